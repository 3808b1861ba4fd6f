"""Subscriptions: create, list, show, delete, pause, resume and reset (replay).

The body of ``POST /subscriptions`` is read as JSON and validated by
:func:`tideflow.triggers.subscriptions.parse_spec`: a bad filter is a 422
naming its path (``filters[1].sql``), any other bad field a 422 naming it
(``delivery.backoffDelay``). A missing bus is a 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Final

import orjson
from fastapi import APIRouter, Depends, Path, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from tideflow.api import audit
from tideflow.api.access import authorize, in_route, requires
from tideflow.api.errors import problem
from tideflow.api.routes.events import json_response
from tideflow.api.schemas import Problem
from tideflow.api.services import Services, get_services
from tideflow.auth.scopes import READ, SUBSCRIBE, bus_scope
from tideflow.errors import InvalidArgument, InvalidFilter, ProtectedResource, format_path
from tideflow.isotime import parse_timestamp
from tideflow.triggers.subscriptions import Subscription, SubscriptionKind

if TYPE_CHECKING:
    from tideflow.triggers.dispatcher import Dispatcher

router = APIRouter(tags=["subscriptions"])

_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    code: {"model": Problem} for code in (400, 404, 409, 422, 503)
}
_DURATION: Final = {"type": "string", "description": "ISO 8601 duration, e.g. PT1S"}
_FILTER: Final = {
    "type": "object",
    "description": "One filter in the CloudEvents Subscriptions API form: exactly one of "
    "exact, prefix, suffix (attribute -> string), all, any (list of filters), "
    "not (a filter), sql (a CloudEvents SQL expression)",
}
_DELIVERY: Final = {
    "type": "object",
    "properties": {
        "retry": {"type": "integer", "minimum": 0, "maximum": 100, "default": 3},
        "backoffPolicy": {"enum": ["linear", "exponential"], "default": "exponential"},
        "backoffDelay": {**_DURATION, "default": "PT1S"},
        "maxDelay": {**_DURATION, "default": "PT1M"},
        "deadLetterBus": {"type": "string", "description": "default: <bus>.deadletter"},
        "ordered": {"type": "boolean", "default": False},
        "maxInFlight": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 64},
        "timeout": {**_DURATION, "default": "PT10S"},
    },
    "additionalProperties": False,
}
_CREATE: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["bus", "sink"],
    "properties": {
        "bus": {"type": "string"},
        "filters": {"type": "array", "items": _FILTER, "description": "ANDed"},
        "sink": {
            "type": "string",
            "format": "uri",
            "description": "http(s) URL, without a user or password",
        },
        "headers": {
            "type": "object",
            "description": "Sent with every delivery. A credential (authorization, cookie, "
            "names with auth, token, key, secret, password) must be a secret reference.",
            "additionalProperties": {
                "oneOf": [
                    {"type": "string"},
                    {
                        "type": "object",
                        "required": ["secret"],
                        "properties": {"secret": {"type": "string"}},
                        "additionalProperties": False,
                    },
                ]
            },
        },
        "transform": {
            "type": "string",
            "description": "jq expression; its first output becomes the delivered data",
        },
        "delivery": _DELIVERY,
        "from": {
            "oneOf": [{"enum": ["latest", "earliest"]}, {"type": "integer", "minimum": 0}],
            "default": "latest",
        },
    },
    "additionalProperties": False,
}
_SUBSCRIPTION: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        **_CREATE["properties"],
        "sink": {**_CREATE["properties"]["sink"], "type": ["string", "null"]},
        "transform": {**_CREATE["properties"]["transform"], "type": ["string", "null"]},
        "id": {"type": "string"},
        "kind": {"enum": ["http", "internal"]},
        "state": {"enum": ["active", "paused"]},
        "committedOffset": {"type": "integer"},
        "headOffset": {"type": ["integer", "null"]},
        "lag": {"type": ["integer", "null"]},
        "delivered": {"type": "integer"},
        "failed": {"type": "integer", "description": "failed attempts"},
        "deadLettered": {"type": "integer"},
        "createdAt": {"type": ["string", "null"], "format": "date-time"},
    },
}
_RESET: Final = {
    "type": "object",
    "description": "exactly one of offset or time",
    "properties": {
        "offset": {"type": "integer", "minimum": 0},
        "time": {"type": "string", "format": "date-time"},
    },
}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _returns(status: int, schema: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {**_ERRORS, status: {"content": {"application/json": {"schema": schema}}}}


_ONE: Final = _returns(200, _SUBSCRIPTION)
SubscriptionId = Annotated[str, Path(description="The subscription id.")]
Services_ = Annotated[Services, Depends(get_services)]


def _dispatcher(services: Services) -> Dispatcher:
    dispatcher = services.dispatcher
    if dispatcher is None:
        raise HTTPException(503, "subscriptions are not available: this server has no dispatcher")
    return dispatcher


async def _authorized(
    request: Request, dispatcher: Dispatcher, subscription_id: str
) -> Subscription:
    """The subscription, if the request's token may manage it (``subscribe:<its bus>``)."""
    sub = await dispatcher.subscriptions.get(subscription_id)
    authorize(request.scope, bus_scope(SUBSCRIBE, sub.bus))
    return sub


async def json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw or b"null")
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument(f"the body is not valid JSON: {exc}", argument="(body)") from None


def _invalid(exc: InvalidArgument | InvalidFilter) -> Response:
    if isinstance(exc, InvalidFilter):
        return problem(422, "invalid-filter", "Invalid filter", exc.message, format_path(exc.path))
    return problem(422, "invalid-subscription", "Invalid subscription", exc.message, exc.argument)


@router.post(
    "/subscriptions",
    status_code=201,
    responses=_returns(201, _SUBSCRIPTION),
    openapi_extra=_body(_CREATE),
    summary="Create a subscription",
    dependencies=[in_route("subscribe:<the body's bus>")],
)
async def create_subscription(request: Request, services: Services_) -> Response:
    """Create a subscription: ``{bus, filters, sink, headers, transform, delivery, from}``.

    Delivery starts at once (from the head of the bus unless ``from`` says otherwise).
    """
    dispatcher = _dispatcher(services)
    try:
        body = await json_body(request)
        if isinstance(body, dict) and isinstance(body.get("bus"), str):
            authorize(request.scope, bus_scope(SUBSCRIBE, body["bus"]))
        sub = await dispatcher.create(body)
    except (InvalidArgument, InvalidFilter) as exc:
        return _invalid(exc)
    target = f"/subscriptions/{sub.id}"
    await audit.record(request, "subscription.created", target, subscriptionId=sub.id, bus=sub.bus)
    _, head = await dispatcher.get(sub.id)
    response = json_response(sub.to_json(head), 201)
    response.headers["location"] = f"/subscriptions/{sub.id}"
    return response


@router.get(
    "/subscriptions",
    responses=_returns(
        200,
        {
            "type": "object",
            "properties": {"subscriptions": {"type": "array", "items": _SUBSCRIPTION}},
        },
    ),
    summary="List subscriptions",
    dependencies=[requires(READ)],
)
async def list_subscriptions(services: Services_) -> Response:
    """Every subscription with its state, committed offset, lag and counts, oldest first."""
    found = await _dispatcher(services).list_all()
    return json_response({"subscriptions": [sub.to_json(head) for sub, head in found]})


@router.get(
    "/subscriptions/{subscription_id}",
    responses=_ONE,
    summary="Show a subscription",
    dependencies=[requires(READ)],
)
async def show_subscription(subscription_id: SubscriptionId, services: Services_) -> Response:
    """State, committed offset, lag behind the head of the bus, delivered/failed/dead-lettered."""
    sub, head = await _dispatcher(services).get(subscription_id)
    return json_response(sub.to_json(head))


@router.delete(
    "/subscriptions/{subscription_id}",
    status_code=204,
    responses=_ERRORS,
    summary="Delete a subscription",
    dependencies=[in_route("subscribe:<the subscription's bus>")],
)
async def delete_subscription(
    subscription_id: SubscriptionId, request: Request, services: Services_
) -> Response:
    """Stop delivering and forget the subscription (409 for the server's own, internal ones)."""
    dispatcher = _dispatcher(services)
    sub = await _authorized(request, dispatcher, subscription_id)
    if sub.kind is SubscriptionKind.INTERNAL:
        raise ProtectedResource(
            f"subscription {sub.id!r} is the server's own (internal): it cannot be deleted"
        )
    await dispatcher.delete(subscription_id)
    target = f"/subscriptions/{sub.id}"
    await audit.record(request, "subscription.deleted", target, subscriptionId=sub.id, bus=sub.bus)
    return Response(status_code=204)


@router.post(
    "/subscriptions/{subscription_id}/pause",
    responses=_ONE,
    summary="Pause a subscription",
    dependencies=[in_route("subscribe:<the subscription's bus>")],
)
async def pause_subscription(
    subscription_id: SubscriptionId, request: Request, services: Services_
) -> Response:
    """Stop delivering; deliveries in flight are abandoned and redone after resume."""
    dispatcher = _dispatcher(services)
    await _authorized(request, dispatcher, subscription_id)
    await dispatcher.pause(subscription_id)
    sub, head = await dispatcher.get(subscription_id)
    return json_response(sub.to_json(head))


@router.post(
    "/subscriptions/{subscription_id}/resume",
    responses=_ONE,
    summary="Resume a subscription",
    dependencies=[in_route("subscribe:<the subscription's bus>")],
)
async def resume_subscription(
    subscription_id: SubscriptionId, request: Request, services: Services_
) -> Response:
    """Deliver again from the committed offset."""
    dispatcher = _dispatcher(services)
    await _authorized(request, dispatcher, subscription_id)
    await dispatcher.resume(subscription_id)
    sub, head = await dispatcher.get(subscription_id)
    return json_response(sub.to_json(head))


@router.post(
    "/subscriptions/{subscription_id}/reset",
    responses=_ONE,
    openapi_extra=_body(_RESET),
    summary="Reset a subscription's offset (replay)",
    dependencies=[in_route("subscribe:<the subscription's bus>")],
)
async def reset_subscription(
    subscription_id: SubscriptionId, request: Request, services: Services_
) -> Response:
    """Deliver next from ``{"offset": n}`` (the event at ``n``) or ``{"time": RFC 3339}``
    (the first event stored at or after it). Moving back replays; moving forward skips."""
    dispatcher = _dispatcher(services)
    await _authorized(request, dispatcher, subscription_id)
    try:
        offset, time = _reset_target(await json_body(request))
    except InvalidArgument as exc:
        return _invalid(exc)
    await dispatcher.reset(subscription_id, offset=offset, time=time)
    sub, head = await dispatcher.get(subscription_id)
    return json_response(sub.to_json(head))


def _reset_target(body: Any) -> tuple[int | None, Any]:
    if not isinstance(body, dict) or len(set(body) & {"offset", "time"}) != 1 or len(body) != 1:
        raise InvalidArgument(
            'reset takes exactly one of {"offset": n} or {"time": "RFC 3339 timestamp"}',
            argument="(body)",
        )
    if "offset" in body:
        offset = body["offset"]
        if type(offset) is not int or offset < 0:
            raise InvalidArgument(
                f"offset must be an integer >= 0, got {offset!r}", argument="offset"
            )
        return offset, None
    try:
        return None, parse_timestamp(body["time"])
    except ValueError as exc:
        raise InvalidArgument(f"time: {exc}", argument="time") from None
