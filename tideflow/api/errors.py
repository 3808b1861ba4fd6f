"""HTTP error responses: every failure becomes ``{type, title, detail, path?}``.

Each :mod:`tideflow.errors` class maps to a status. Anything unexpected
becomes a 500 with the same body shape and no stack trace; the traceback
goes to the server log only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from tideflow import errors
from tideflow.auth.rates import retry_after

log = logging.getLogger("tideflow.api")

PROBLEM_JSON: Final = "application/problem+json"


@dataclass(frozen=True, slots=True)
class _Kind:
    status: int
    type: str
    title: str


# Most specific first: the first class an error is an instance of wins.
_KINDS: Final[tuple[tuple[type[BaseException], _Kind], ...]] = (
    (errors.AuthenticationRequired, _Kind(401, "unauthenticated", "Authentication required")),
    (errors.PermissionDenied, _Kind(403, "forbidden", "Forbidden")),
    (errors.RateLimited, _Kind(429, "rate-limited", "Too many requests")),
    (errors.MisdirectedRequest, _Kind(421, "misdirected-request", "Misdirected request")),
    (errors.UnsupportedMediaType, _Kind(415, "unsupported-media-type", "Unsupported content type")),
    (errors.ProtectedResource, _Kind(409, "protected", "Protected")),
    (errors.BusNotFound, _Kind(404, "bus-not-found", "No such bus")),
    (errors.EventNotFound, _Kind(404, "event-not-found", "No such event")),
    (errors.NotFoundError, _Kind(404, "not-found", "Not found")),
    (errors.AlreadyExists, _Kind(409, "already-exists", "Already exists")),
    (errors.ConflictError, _Kind(409, "conflict", "Conflict")),
    (errors.UnknownParameter, _Kind(422, "unknown-parameter", "Unknown query parameter")),
    (errors.InvalidParameter, _Kind(422, "invalid-parameter", "Invalid query parameter")),
    (errors.InvalidArgument, _Kind(400, "invalid-argument", "Invalid argument")),
    (errors.WorkflowValidationError, _Kind(422, "invalid-workflow", "Invalid workflow")),
    (errors.WorkflowLoadError, _Kind(400, "unreadable-workflow", "Unreadable workflow")),
    (errors.UnstorableValue, _Kind(400, "unstorable-value", "Value cannot be stored")),
    (errors.ValueLimitExceeded, _Kind(413, "limit-exceeded", "Value beyond a limit")),
    (errors.ExpressionError, _Kind(400, "expression-error", "Expression error")),
    (errors.EngineUnavailable, _Kind(503, "engine-unavailable", "Workflow engine unavailable")),
    (errors.StoreError, _Kind(503, "store-unavailable", "Event store unavailable")),
    (
        errors.IdentityProviderUnavailable,
        _Kind(503, "identity-provider-unavailable", "Identity provider unavailable"),
    ),
)
_EVENT_KINDS: Final = {
    400: _Kind(400, "invalid-event", "Invalid CloudEvent"),
    413: _Kind(413, "payload-too-large", "Request body too large"),
    415: _Kind(415, "unsupported-media-type", "Unsupported content type"),
}
_INTERNAL: Final = _Kind(500, "internal-error", "Internal server error")


def problem(status: int, type_: str, title: str, detail: str, path: str | None = None) -> Response:
    """A problem response with the standard body."""
    body: dict[str, Any] = {"type": type_, "title": title, "detail": detail}
    if path is not None:
        body["path"] = path
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON)


def _event_path(exc: errors.EventRejected) -> str | None:
    if exc.index is None:
        return exc.attribute
    return f"[{exc.index}]" + (f".{exc.attribute}" if exc.attribute else "")


def tideflow_error_response(exc: errors.TideflowError) -> Response:
    """The response for one of our errors."""
    if isinstance(exc, errors.EventRejected):
        kind = _EVENT_KINDS.get(exc.status) or _Kind(exc.status, "invalid-event", "Rejected")
        return problem(kind.status, kind.type, kind.title, exc.reason, _event_path(exc))
    for cls, kind in _KINDS:
        if isinstance(exc, cls):
            path = getattr(exc, "argument", None) or _path_of(exc)
            response = problem(kind.status, kind.type, kind.title, exc.message, path)
            if kind.status == 401:
                response.headers["www-authenticate"] = 'Bearer realm="tideflow"'
            if isinstance(exc, errors.RateLimited):
                response.headers["retry-after"] = str(retry_after(exc.retry_after))
            return response
    log.error("unmapped Tideflow error", exc_info=exc)
    return problem(500, type(exc).__name__, "Tideflow error", exc.message)


def _path_of(exc: errors.TideflowError) -> str | None:
    path = getattr(exc, "path", None)
    if isinstance(path, tuple) and path:
        return errors.format_path(path)
    return None


async def _on_tideflow_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.TideflowError)
    return tideflow_error_response(exc)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ()))
    detail = f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid request"
    return problem(400, "invalid-request", "Invalid request", detail, where or None)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
    detail = str(exc.detail) or title
    if exc.status_code == 404:
        detail = f"no route for {request.method} {request.url.path}"
    response = problem(exc.status_code, "http-error", title, detail)
    response.headers.update(exc.headers or {})
    return response


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return problem(
        _INTERNAL.status,
        _INTERNAL.type,
        _INTERNAL.title,
        f"{type(exc).__name__} while handling the request; details are in the server log",
    )


_FASTAPI_VALIDATION: Final = ("HTTPValidationError", "ValidationError")
"""FastAPI's own 422 models: our handler answers a bad parameter or body 400 instead."""


def document_problems(document: dict[str, Any], problems: frozenset[str]) -> dict[str, Any]:
    """Say in an OpenAPI document what the handlers above really answer.

    Every error response whose body is one of the ``problems`` models is
    ``application/problem+json`` (see :func:`problem`), and the 422 FastAPI
    documents for a bad parameter is the 400 ``invalid-request`` the handler
    sends.
    """
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses: dict[str, Any] = operation.get("responses", {})
            if _is_fastapi_validation(responses.get("422")):
                del responses["422"]
                responses.setdefault("400", _problem_response("Bad Request"))
            for status, response in responses.items():
                content = response.get("content", {})
                if int(status) >= 400 and _ref_name(content.get("application/json")) in problems:
                    content[PROBLEM_JSON] = content.pop("application/json")
    schemas = document.get("components", {}).get("schemas", {})
    for name in _FASTAPI_VALIDATION:
        schemas.pop(name, None)
    return document


def _ref_name(media: dict[str, Any] | None) -> str | None:
    ref = ((media or {}).get("schema") or {}).get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _is_fastapi_validation(response: dict[str, Any] | None) -> bool:
    media = (response or {}).get("content", {}).get("application/json")
    return _ref_name(media) == _FASTAPI_VALIDATION[0]


def _problem_response(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Problem"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(errors.TideflowError, _on_tideflow_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
