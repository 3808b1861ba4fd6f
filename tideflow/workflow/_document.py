"""The structure of a whole 0.8 document: top level and the reusable definitions."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from typing import Any

from tideflow.isotime import parse_duration, parse_timestamp
from tideflow.workflow import _structure as s
from tideflow.workflow._schema import (
    Bool,
    Context,
    Duration,
    Either,
    Enum,
    ListOf,
    Number,
    Obj,
    Path,
    Ref,
    Spec,
    Str,
    StrMap,
    suggest,
)
from tideflow.workflow._states import STATE

SPEC_VERSION = "0.8"
EXPRESSION_LANGS = ("jq", "jsonpath")


_RPC_OPERATION = re.compile(r"[^#]+#[^#]+#[^#]+")
_ASYNC_OPERATION = re.compile(r"[^#]+#[^#]+")


def _function_type(value: Mapping[str, Any], path: Path, ctx: Context) -> None:
    kind = value.get("type", "rest")
    operation = value.get("operation")
    if kind == "rpc" and isinstance(operation, str) and not _RPC_OPERATION.fullmatch(operation):
        ctx.error((*path, "operation"), f"'{operation}' is not '<proto file>#<Service>#<Method>'")
    if (
        kind == "asyncapi"
        and isinstance(operation, str)
        and not _ASYNC_OPERATION.fullmatch(operation)
    ):
        ctx.error((*path, "operation"), f"'{operation}' is not '<AsyncAPI document>#<operationId>'")
    if kind == "expression" and isinstance(operation, str) and operation.strip():
        ctx.expressions.append(((*path, "operation"), operation, True))


FUNCTION = Obj(
    "a function definition",
    {
        "name": Str(),
        "operation": Str(),
        "type": Enum(s.FUNCTION_TYPES),
        "authRef": Ref("auth", "authRef"),
        "metadata": StrMap(),
    },
    required=("name", "operation"),
    rules=(_function_type,),
)

CORRELATION = Obj(
    "a correlation rule",
    {"contextAttributeName": Str(), "contextAttributeValue": Str()},
    required=("contextAttributeName",),
)


def _event_source(value: Mapping[str, Any], path: Path, ctx: Context) -> None:
    if ctx.sonataflow:  # SonataFlow matches consumed events by type alone
        return
    if value.get("kind", "consumed") == "consumed" and "source" not in value:
        ctx.error((*path, "source"), "missing: a consumed event needs 'source'")


EVENT = Obj(
    "an event definition",
    {
        "name": Str(),
        "source": Str(),
        "type": Str(),
        "kind": Enum(("consumed", "produced")),
        "correlation": ListOf(CORRELATION, min_items=1),
        "dataOnly": Bool(),
        "metadata": StrMap(),
    },
    required=("name", "type"),
    rules=(_event_source,),
)
RETRY = Obj(
    "a retry definition",
    {
        "name": Str(),
        "delay": Duration(),
        "maxDelay": Duration(),
        "increment": Duration(),
        "multiplier": Number(minimum=0, or_string=True),
        "maxAttempts": Number(minimum=1, or_string=True),
        "jitter": Either((Number(minimum=0, maximum=1), Duration())),
    },
    required=("name", "maxAttempts"),
)
ERROR = Obj(
    "an error definition",
    {"name": Str(), "code": Either((Str(), Number())), "description": Str(min_len=0)},
    required=("name",),
)
_AUTH_NEEDS = {
    "basic": ("username", "password"),
    "bearer": ("token",),
    "oauth2": ("grantType", "clientId"),
}


def _auth_properties(value: Mapping[str, Any], path: Path, ctx: Context) -> None:
    props = value.get("properties")
    scheme = value.get("scheme", "basic")
    if not isinstance(props, Mapping) or scheme not in _AUTH_NEEDS:
        return
    for key in _AUTH_NEEDS[scheme]:
        if key not in props:
            ctx.error((*path, "properties", key), f"missing: {scheme} auth needs '{key}'")
    grant = props.get("grantType")
    grants = ("password", "clientCredentials", "tokenExchange")
    if scheme == "oauth2" and grant is not None and grant not in grants:
        Enum(grants).check(grant, (*path, "properties", "grantType"), ctx)


AUTH = Obj(
    "an auth definition",
    {
        "name": Str(),
        "scheme": Enum(("basic", "bearer", "oauth2")),
        "properties": Either((Str(), Obj("auth properties", {}, extra=True))),
    },
    required=("name", "properties"),
    rules=(_auth_properties,),
)

_REPEAT = re.compile(r"^R\d*$")


class Interval(Spec):
    """An ISO 8601 repeating interval: ``R/PT2H``, ``R5/2020-03-20T09:00:00Z/PT2H``, ..."""

    expects = "a repeating interval"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str)

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        parts = value.split("/") if isinstance(value, str) else []
        ok = len(parts) in (2, 3) and _REPEAT.match(parts[0]) is not None
        durations = 0
        for part in parts[1:] if ok else ():
            if part.startswith("P"):
                durations += _is_duration(part)
                ok = ok and _is_duration(part)
            else:
                ok = ok and _is_timestamp(part)
        if not ok or durations != 1:
            ctx.error(
                path,
                f"'{value}' is not an ISO 8601 repeating interval "
                "(examples: R/PT2H, R/2020-03-20T09:00:00Z/PT2H)",
            )


def _is_duration(text: str) -> bool:
    try:
        parse_duration(text)
    except ValueError:
        return False
    return True


def _is_timestamp(text: str) -> bool:
    try:
        parse_timestamp(text)
    except ValueError:
        return False
    return True


class CronText(Spec):
    """A cron expression: 5 (Unix) to 7 (Quartz) fields."""

    expects = "a cron expression"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str)

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        fields = value.split() if isinstance(value, str) else []
        if not 5 <= len(fields) <= 7:
            ctx.error(path, f"'{value}' is not a cron expression (5 to 7 fields)")


class Timestamp(Spec):
    """An RFC 3339 date-time."""

    expects = "a date-time"

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        if not isinstance(value, str) or not _is_timestamp(value):
            ctx.error(path, "must be an RFC 3339 date-time such as 2024-01-31T09:00:00Z")


class TimeZone(Spec):
    """An IANA time zone name."""

    expects = "a time zone"

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
            ctx.error(path, f"'{value}' is not an IANA time zone such as 'Europe/Paris'")


CRON = Either(
    (
        CronText(),
        Obj(
            "a cron definition",
            {"expression": CronText(), "validUntil": Timestamp()},
            required=("expression",),
        ),
    )
)
SCHEDULE = Either(
    (
        Interval(),
        Obj(
            "a schedule",
            {"interval": Interval(), "cron": CRON, "timezone": TimeZone()},
            exactly_one=(("interval", "cron"),),
        ),
    )
)
START = Either(
    (
        Ref("state", "start"),
        Obj(
            "a start definition",
            {"stateName": Ref("state", "start"), "schedule": SCHEDULE},
            required=("stateName", "schedule"),
        ),
    )
)
DATA_INPUT_SCHEMA = Either(
    (
        Str(),
        Obj(
            "a data input schema",
            {
                "schema": Either((Str(), Obj("a JSON schema", {}, extra=True))),
                "failOnValidationErrors": Bool(),
            },
            required=("schema",),
        ),
    )
)


def _external(item: Spec) -> Either:
    """Inline definitions, or the path/URI of a document holding them (left unresolved)."""
    return Either((Str(), ListOf(item, min_items=1)))


def _identity(value: Mapping[str, Any], path: Path, ctx: Context) -> None:
    if "id" not in value and "key" not in value:
        ctx.error((*path, "id"), "missing: a workflow needs 'id' (or 'key')")
    if isinstance(value.get("id"), str) and "${" in value["id"]:
        ctx.error((*path, "id"), "must be a constant, not an expression")
    version = value.get("specVersion")
    if "specVersion" not in value:
        ctx.warn((*path, "specVersion"), f"missing; read as Serverless Workflow {SPEC_VERSION}")
    elif isinstance(version, str) and version.strip() != SPEC_VERSION:
        ctx.error(
            (*path, "specVersion"),
            f"Tideflow reads Serverless Workflow {SPEC_VERSION}, not '{version}'",
        )
    for key in value:
        hint = suggest(str(key), _TOP_LEVEL, cutoff=0.8) if key not in _TOP_LEVEL else ""
        if hint:
            ctx.warn((*path, str(key)), f"not a property of a workflow (ignored){hint}")
    for key in ("name", "description", "version"):
        text = value.get(key)
        if isinstance(text, str) and "${" in text:
            ctx.expressions.append(((*path, key), text, False))


class _Version(Spec):
    """A version string; YAML turns an unquoted ``1.0`` into a number."""

    expects = "a string"

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        if isinstance(value, int | float) and not isinstance(value, bool):
            ctx.error(path, f"must be a string, not a number: quote it ('{value}')")
        else:
            Str().check(value, path, ctx)


_TOP_LEVEL = (
    "id",
    "key",
    "name",
    "description",
    "version",
    "annotations",
    "dataInputSchema",
    "secrets",
    "constants",
    "start",
    "specVersion",
    "expressionLang",
    "timeouts",
    "errors",
    "keepActive",
    "metadata",
    "auth",
    "events",
    "functions",
    "autoRetries",
    "retries",
    "states",
)

WORKFLOW = Obj(
    "a workflow",
    {
        "id": Str(),
        "key": Str(),
        "name": Str(),
        "description": Str(min_len=0),
        "version": _Version(),
        "annotations": ListOf(Str(), min_items=1),
        "dataInputSchema": DATA_INPUT_SCHEMA,
        "secrets": Either((Str(), ListOf(Str(), min_items=1))),
        "constants": Either((Str(), Obj("constants", {}, extra=True))),
        "start": START,
        "specVersion": Str(),
        "expressionLang": Enum(EXPRESSION_LANGS),
        "timeouts": Either((Str(), s.timeouts("a workflow", *s.TIMEOUT_KEYS))),
        "errors": _external(ERROR),
        "keepActive": Bool(),
        "metadata": StrMap(),
        "auth": _external(AUTH),
        "events": _external(EVENT),
        "functions": _external(FUNCTION),
        "autoRetries": Bool(),
        "retries": _external(RETRY),
        "states": ListOf(STATE, min_items=1),
    },
    required=("states",),
    at_most_one=(("id", "key"),),
    extra=True,  # the spec allows extra top-level properties
    rules=(_identity,),
)
