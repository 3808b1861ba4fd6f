"""``/docs`` over HTTP: the page names no URL outside the server, and every script,
style sheet and icon it loads is served by the server itself, without a token."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from tideflow.api.app import create_app
from tideflow.api.services import Services
from tideflow.api.testserver import serve_app
from tideflow.settings import Settings
from tideflow.testing import InMemoryEventStore

_URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|\burl:\s*['"]([^'"]+)['"]""")


@asynccontextmanager
async def _opener(settings: Settings) -> AsyncIterator[Services]:
    yield Services(settings=settings, events=InMemoryEventStore())


async def test_docs_assets_come_from_the_server() -> None:
    async with serve_app(create_app(Settings(), _opener)) as url, httpx.AsyncClient(
        base_url=url
    ) as http:
        page = await http.get("/docs")
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        urls = [a or b for a, b in _URL.findall(page.text)]
        assert "/openapi.json" in urls
        assert any(u.endswith("swagger-ui-bundle.js") for u in urls), urls
        assert any(u.endswith("swagger-ui.css") for u in urls), urls
        for link in urls:
            assert link.startswith("/"), f"/docs loads {link} from outside the server"
            got = await http.get(link)
            assert got.status_code == 200, (link, got.status_code)
            assert got.content
        assert "cdn" not in page.text.lower()
        assert (await http.get("/docs/oauth2-redirect")).status_code == 200
        redoc = await http.get("/redoc")  # it needed a CDN: gone (behind the gate now)
        assert redoc.status_code in (401, 404)
        missing = await http.get("/docs/assets/nothing.js")
        assert missing.status_code == 404
