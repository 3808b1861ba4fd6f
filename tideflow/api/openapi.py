"""The HTTP API's OpenAPI document, generated from the app itself.

``python -m tideflow.api.openapi > specs/openapi.json`` regenerates the
shipped copy; ``tests/unit/test_openapi.py`` fails when it is out of date.
"""

from __future__ import annotations

import json
from typing import Any

from tideflow.api.app import create_app
from tideflow.settings import Settings


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of :func:`~tideflow.api.app.create_app` (no services opened)."""
    document: dict[str, Any] = create_app(Settings()).openapi()
    return document


def render() -> str:
    """The document as the text of ``specs/openapi.json``."""
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(render(), end="")
