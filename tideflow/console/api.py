"""The console's way into the API: the same app, called in process.

Every page reads and every form writes through the HTTP API of the server it
runs in (an ``httpx`` client over ASGI, no socket), with the session's token.
So the console can do exactly what its token may -- scopes, validation, audit,
limits and rate limits are the API's own -- and it shows the API's problems
(their ``detail`` and ``path``) as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import httpx

from tideflow import jsontext

API_TIMEOUT: Final = 30.0


class ApiProblem(Exception):
    """An API answer other than 2xx: its status and its problem body."""

    def __init__(self, status: int, body: Mapping[str, Any] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body: Mapping[str, Any] = body or {}

    @property
    def detail(self) -> str:
        detail = self.body.get("detail") or self.body.get("title") or f"HTTP {self.status}"
        return str(detail)


class Api:
    """The API of ``app`` as the holder of ``token`` sees it.

    Args:
        app: The ASGI application (the server's own).
        host: The ``Host`` to send (the browser's, which the access gate checked).
        token: The API token (``""``: none, under ``--insecure-local``).
    """

    def __init__(self, app: Any, host: str, token: str) -> None:
        headers = {"host": host}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://console.internal",
            headers=headers,
            timeout=API_TIMEOUT,
        )

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """The JSON of a GET.

        Raises:
            ApiProblem: The API did not answer 2xx.
        """
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        return _json(await self._client.get(path, params=clean))

    async def text(self, path: str) -> str:
        """The text of a GET (a workflow's source).

        Raises:
            ApiProblem: The API did not answer 2xx.
        """
        response = await self._client.get(path)
        if not response.is_success:
            _json(response)
        return response.text

    async def post(
        self,
        path: str,
        content: bytes | str = b"",
        content_type: str = "application/json",
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """The JSON answer of a POST.

        Raises:
            ApiProblem: The API did not answer 2xx.
        """
        headers = {"content-type": content_type} if content else {}
        response = await self._client.post(path, content=content, headers=headers, params=params)
        return _json(response)


def _json(response: httpx.Response) -> Any:
    try:
        body = jsontext.loads(response.content) if response.content else {}
    except ValueError:
        body = {"detail": response.text[:500]}
    if not response.is_success:
        raise ApiProblem(response.status_code, body if isinstance(body, dict) else {})
    return body
