"""The instance hot paths as plain ASGI, in front of FastAPI's routing.

``POST /workflows/{id}/instances`` (a start, optionally waiting for the end)
and ``GET /instances/{id}`` (optionally a long poll) are the user's path to
the runtime. As for ingestion (:mod:`tideflow.api.fastpath`), FastAPI's
routing, dependency solving and response building cost more CPU per request
than the start itself, so :class:`InstanceFastPath` answers these two routes
directly with the same functions the routes use
(:func:`~tideflow.api.routes.instances.read_input`,
:func:`~tideflow.api.routes.instances.check_wait`, the runtime and the
instances gateway) and the same answers.

It takes only the plain requests: a query of at most ``wait`` (and
``version`` for a start), each once, ``wait`` a number. Anything else
(another or repeated parameter, a ``wait`` that is not a number) goes to the
FastAPI route, which answers the error exactly as documented. The access
gate in front has admitted the request; this path checks its scope
(``run``, ``read``) as the routes' dependencies do. It sits behind the body
limit middleware (:mod:`tideflow.api.body_limit`), which caps the input.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any, Final
from urllib.parse import parse_qsl

from starlette.requests import Request

from tideflow.api.access import authorize
from tideflow.api.errors import problem, tideflow_error_response
from tideflow.api.fastpath import ASGIApp, Receive, Scope, Send
from tideflow.api.routes import instances as routes
from tideflow.api.services import Services
from tideflow.auth.scopes import READ, RUN
from tideflow.errors import TideflowError

log = logging.getLogger("tideflow.api")

_WORKFLOWS: Final = "/workflows/"
_STARTS: Final = "/instances"
_INSTANCES: Final = "/instances/"
_START_QUERY: Final = frozenset({"version", "wait"})
_SHOW_QUERY: Final = frozenset({"wait"})


def start_path(path: str) -> str | None:
    """The workflow id of a single start's path, else ``None``."""
    if path.startswith(_WORKFLOWS) and path.endswith(_STARTS):
        workflow_id = path[len(_WORKFLOWS) : -len(_STARTS)]
        if workflow_id and "/" not in workflow_id:
            return workflow_id
    return None


def show_path(path: str) -> str | None:
    """The instance id of ``GET /instances/{id}``'s path, else ``None``."""
    if path.startswith(_INSTANCES):
        instance_id = path[len(_INSTANCES) :]
        if instance_id and "/" not in instance_id:
            return instance_id
    return None


def plain_query(query_string: bytes, allowed: frozenset[str]) -> dict[str, str] | None:
    """The query as a dict if it is one the fast path takes (see the module docs), else
    ``None`` (the FastAPI route then answers, an error included)."""
    if not query_string:
        return {}
    try:
        pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    except ValueError:
        return None
    found = dict(pairs)
    if len(found) != len(pairs) or not set(found) <= allowed:
        return None
    if "wait" in found:
        try:
            float(found["wait"])
        except ValueError:
            return None
    return found


class InstanceFastPath:
    """ASGI middleware answering a plain start and a plain show itself.

    Args:
        app: The application for every other request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        if method == "POST" and (workflow_id := start_path(path)) is not None:
            query = plain_query(scope["query_string"], _START_QUERY)
            if query is not None:
                await self._answer(
                    scope, receive, send, self._start(scope, receive, workflow_id, query)
                )
                return
        elif method == "GET" and (instance_id := show_path(path)) is not None:
            query = plain_query(scope["query_string"], _SHOW_QUERY)
            if query is not None:
                await self._answer(
                    scope, receive, send, self._show(scope, receive, instance_id, query)
                )
                return
        await self.app(scope, receive, send)

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, work: Awaitable[Any]
    ) -> None:
        try:
            response = await work
        except TideflowError as exc:
            response = tideflow_error_response(exc)
        except Exception as exc:
            log.exception("unhandled error in %s %s", scope["method"], scope["path"], exc_info=exc)
            detail = f"{type(exc).__name__} while handling the request; see the server log"
            response = problem(500, "internal-error", "Internal server error", detail)
        await response(scope, receive, send)

    async def _start(
        self, scope: Scope, receive: Receive, workflow_id: str, query: dict[str, str]
    ) -> Any:
        authorize(scope, RUN)
        wait = float(query["wait"]) if "wait" in query else None
        routes.check_wait(wait)
        request = Request(scope, receive)
        return await routes.started(
            request, _services(scope), workflow_id, query.get("version"), wait
        )

    async def _show(
        self, scope: Scope, receive: Receive, instance_id: str, query: dict[str, str]
    ) -> Any:
        authorize(scope, READ)
        wait = float(query["wait"]) if "wait" in query else None
        request = Request(scope, receive)
        return await routes.shown(request, _services(scope), instance_id, wait)


def _services(scope: Scope) -> Services:
    services: Services = scope["app"].state.services
    return services
