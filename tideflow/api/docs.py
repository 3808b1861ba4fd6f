"""The API's interactive documentation, ``/docs``, served with nothing from the internet.

FastAPI's own ``/docs`` page loads Swagger UI from a CDN, so it renders blank on
a machine that cannot reach it. This page loads the same Swagger UI from the
``swagger-ui-bundle`` package, served by this server under ``/docs/assets/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from tideflow.api.access import PUBLIC_PREFIX as ASSETS_PREFIX

DOCS_PATH: Final = "/docs"
OAUTH2_REDIRECT_PATH: Final = "/docs/oauth2-redirect"


def swagger_ui_dir() -> Path:
    """The folder of the installed Swagger UI distribution."""
    from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

    return Path(swagger_ui_path)


def install(app: FastAPI, openapi_url: str = "/openapi.json") -> None:
    """Add ``/docs``, its OAuth2 redirect page and its assets to ``app`` (built with
    ``docs_url=None``, ``redoc_url=None``)."""
    app.mount(
        ASSETS_PREFIX.rstrip("/"),
        StaticFiles(directory=swagger_ui_dir()),
        name="docs-assets",
    )

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API",
            swagger_js_url=f"{ASSETS_PREFIX}swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PREFIX}swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PREFIX}favicon-32x32.png",
            oauth2_redirect_url=OAUTH2_REDIRECT_PATH,
        )

    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.add_api_route(DOCS_PATH, docs, methods=["GET"], include_in_schema=False)
    app.add_api_route(
        OAUTH2_REDIRECT_PATH, oauth2_redirect, methods=["GET"], include_in_schema=False
    )
