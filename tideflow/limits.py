"""Depth, size and count limits on values (pure).

Every value that enters Tideflow from outside or that a workflow builds --
instance inputs, state data, event data, function results, definitions,
foreach collections -- is checked against these limits where it enters, so
that no writer (the journal's JSON encoder, the event store, an HTTP answer)
ever meets a value it cannot handle: orjson refuses nesting deeper than 254,
and a 100 MB input costs gigabytes on its way through.

A value beyond a limit fails with :class:`~tideflow.errors.ValueLimitExceeded`
whose ``code`` names the limit (``VALUE_DEPTH_LIMIT``, ``VALUE_BYTES_LIMIT``,
``FOREACH_ITEMS_LIMIT``, ``DEFINITION_NODES_LIMIT``): a refused request (4xx),
a rejected event, or a failed instance.

The limits come from the settings (:func:`configure`, called by ``tideflow
serve``); the defaults are :class:`Limits`' field defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Final

import orjson

from tideflow.errors import (
    ConfigurationError,
    PathPart,
    UnstorableValue,
    ValueLimitExceeded,
    format_path,
)
from tideflow.settings import Settings

__all__ = [
    "BOUNDS",
    "MAX_VALUE_DEPTH",
    "Bound",
    "Limits",
    "check_definition",
    "check_value",
    "configure",
    "current",
    "from_settings",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """The limits (see ``docs/expressions.md``, "Limits").

    Attributes:
        value_depth: Nesting of arrays and objects in any value.
        value_bytes: Size of any value as compact JSON (about).
        foreach_items: Items of one foreach state's collection.
        definition_nodes: Values in a workflow definition once its YAML
            aliases are expanded (an alias counts as often as it is used).
    """

    value_depth: int = 128
    value_bytes: int = 8 * 1024 * 1024
    foreach_items: int = 10_000
    definition_nodes: int = 100_000


_current = Limits()


@dataclass(frozen=True, slots=True)
class Bound:
    """One bound on what a caller can make the server do, as ``docs/security.md``'s limits
    table lists it (a unit test holds the table, this list and the code to each other).

    Attributes:
        what: The start of the table row's first cell.
        setting: The ``TIDEFLOW_*`` variable that sets it; ``None`` when fixed.
        shown: Its default as the table writes it (``"1 MiB"``, ``"10,000"``, ``"60 s"``).
    """

    what: str
    setting: str | None
    shown: str


BOUNDS: Final[tuple[Bound, ...]] = (
    Bound("expression time", "TIDEFLOW_EXPRESSION_TIME_LIMIT", "1.0 s"),
    Bound("expression memory", "TIDEFLOW_EXPRESSION_MEMORY_LIMIT", "256 MiB"),
    Bound("expression worker processes", "TIDEFLOW_EXPRESSION_WORKERS", "2"),
    Bound("value nesting depth", "TIDEFLOW_VALUE_DEPTH_LIMIT", "128"),
    Bound("value size", "TIDEFLOW_VALUE_BYTES_LIMIT", "8 MiB"),
    Bound("runners of one instance", "TIDEFLOW_QUARANTINE_AFTER", "3"),
    Bound("processes killed while", "TIDEFLOW_QUARANTINE_AFTER", "3"),
    Bound("`foreach` items", "TIDEFLOW_FOREACH_ITEMS_LIMIT", "10,000"),
    Bound("definition size", "TIDEFLOW_DEFINITION_NODES_LIMIT", "100,000"),
    Bound("a request body", "TIDEFLOW_MAX_REQUEST_BYTES", "1 MiB"),
    Bound("an instance start's body", "TIDEFLOW_VALUE_BYTES_LIMIT", "8 MiB"),
    Bound("requests per token", "TIDEFLOW_RATE_LIMIT", "none"),
    Bound("how far ahead a delayed event", "TIDEFLOW_EVENT_DELAY_LIMIT", "365 days"),
    Bound("a subscription's `delivery.timeout`", "TIDEFLOW_SINK_TIMEOUT_LIMIT", "60 s"),
    Bound("connections one subscription holds", "TIDEFLOW_SINK_CONNECTIONS", "64"),
    Bound("a subscription's `maxInFlight`", None, "64, at most 1,000"),
    Bound("timeline entries per page", None, "500, at most 5,000"),
    Bound("instances or events per page", None, "100, at most 1,000"),
    Bound("instances one batch starts", None, "at most 100"),
    Bound("a definition's external documents", None, "10 s, 1 MiB and 5 redirects"),
    Bound("a function call's answer", None, "5 minutes"),
    Bound("an OpenAPI document a call needs", None, "30 s, 8 MiB"),
)
"""Every bound of the limits table in ``docs/security.md``, in its order."""

MAX_VALUE_DEPTH = 200
"""The highest depth limit a server accepts: orjson, which writes the journal, the
inboxes and the answers, refuses values nested deeper than 254, and a value sits a
few levels deep inside what is written (an event in a batch in a journal entry)."""


def from_settings(settings: Settings) -> Limits:
    """The limits the settings ask for (``TIDEFLOW_*_LIMIT``).

    Raises:
        ConfigurationError: A depth limit above :data:`MAX_VALUE_DEPTH`.
    """
    if not 1 <= settings.value_depth_limit <= MAX_VALUE_DEPTH:
        raise ConfigurationError(
            f"TIDEFLOW_VALUE_DEPTH_LIMIT must be between 1 and {MAX_VALUE_DEPTH} "
            f"(values nested deeper cannot be written), not {settings.value_depth_limit}"
        )
    return Limits(
        value_depth=settings.value_depth_limit,
        value_bytes=settings.value_bytes_limit,
        foreach_items=settings.foreach_items_limit,
        definition_nodes=settings.definition_nodes_limit,
    )


def configure(limits: Limits) -> None:
    """Use ``limits`` from now on (``tideflow serve`` passes the settings')."""
    global _current
    _current = limits


def current() -> Limits:
    """The limits in force."""
    return _current


_INT_LOW, _INT_HIGH = -(2**63), 2**64 - 1  # the integers orjson writes
_SCALAR_BYTES = 32  # more than such an integer or any float takes in JSON
_SCALARS = (float, bool, type(None))


def check_value(value: Any, what: str, limits: Limits | None = None) -> None:
    """Raise when ``value`` is nested too deep or too large; ``what`` names it in the message.

    Runs after every state and function call, so the usual case is cheap: the
    value's compact JSON (orjson) gives its size, and the brackets in it bound
    its depth (those in strings too: the bound only errs high). A walk without
    recursion decides the rest -- past the depth bound, or a value orjson does
    not write (integers beyond 64 bits, nesting deeper than 254) -- so a value
    nested thousands deep is refused, not a ``RecursionError`` -- and where a
    NUL character may be.

    Raises:
        ValueLimitExceeded: ``value_depth`` or ``value_bytes``, with the path
            of the first value too deep.
        UnstorableValue: A string (or key) with a NUL character, with its path.
    """
    limits = limits or _current
    kind = type(value)
    scalar = (kind is int and _INT_LOW <= value <= _INT_HIGH) or kind in _SCALARS
    if scalar and limits.value_bytes >= _SCALAR_BYTES:  # a function's result is often a number
        return
    try:
        text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # orjson.JSONEncodeError too
        _walk(value, what, limits)
        return
    if text.count(b"{") + text.count(b"[") > limits.value_depth:
        check_depth(value, what, limits)
    if len(text) > limits.value_bytes:
        check_size(len(text), what, limits)
    if b"\\u0000" in text:  # a NUL, or an escaped backslash before "u0000": the walk tells
        _walk(value, what, limits)


def _walk(value: Any, what: str, limits: Limits) -> None:
    """:func:`check_value` by a walk: the depth with the path of the first value too
    deep, and an estimate of the size, stopped as soon as it is past the limit."""
    size = 0
    stack: list[tuple[Any, int, tuple[PathPart, ...]]] = [(value, 1, ())]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, dict | list | tuple):
            if depth > limits.value_depth:
                raise ValueLimitExceeded(
                    f"VALUE_DEPTH_LIMIT: {what} is nested deeper than {limits.value_depth}",
                    limit="value_depth",
                    path=path,
                )
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if isinstance(key, str):
                    _check_characters(key, what, path)
                    size += len(key) + 4
                else:
                    size += 1
                stack.append((child, depth + 1, (*path, key)))
            size += 2
        else:
            if isinstance(item, str):
                _check_characters(item, what, path)
            size += _scalar_size(item)
        check_size(size, what, limits)


def check_depth(value: Any, what: str, limits: Limits | None = None) -> None:
    """Raise when ``value`` nests deeper than the depth limit: :func:`check_value`'s depth
    check, cheap enough for every ingested event (no paths are built unless it fails).

    Raises:
        ValueLimitExceeded: ``value_depth``, with the path of the first value too deep.
    """
    limits = limits or _current
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limits.value_depth:
            _walk(value, what, limits)  # raises, naming the path
        for child in children:
            if isinstance(child, dict | list | tuple):
                stack.append((child, depth + 1))


def check_size(size: int, what: str, limits: Limits | None = None) -> None:
    """Raise when an encoded value of ``size`` bytes is beyond the size limit.

    Raises:
        ValueLimitExceeded: ``value_bytes``.
    """
    limits = limits or _current
    if size > limits.value_bytes:
        raise ValueLimitExceeded(
            f"VALUE_BYTES_LIMIT: {what} is larger than {limits.value_bytes} bytes",
            limit="value_bytes",
        )


def check_definition(document: Any, limits: Limits | None = None) -> None:
    """Refuse a parsed definition whose YAML aliases expand beyond the limits.

    A YAML alias is parsed as a second reference to the same object, so a
    509-byte "billion laughs" document parses into a few objects that expand
    to billions of values the first time anything walks it. This counts the
    expanded values (each shared object as often as it is referenced) and the
    expanded depth, in time proportional to the distinct objects, before
    anything else walks the document.

    Raises:
        ValueLimitExceeded: ``definition_nodes``, or ``value_depth``. (An
            alias cycle is not expanded here; validation reports it.)
        UnstorableValue: A string (or key) with a NUL character, or a value
            JSON cannot hold (YAML ``!!binary``, ``!!set``, ``!!omap``).
    """
    limits = limits or _current
    sizes: dict[int, tuple[int, int]] = {}  # id -> (expanded values, expanded depth)
    pending: set[int] = set()
    stack: list[tuple[Any, bool]] = [(document, False)]
    while stack:
        item, children_done = stack.pop()
        if not isinstance(item, dict | list) or id(item) in sizes:
            continue
        children = list(item.values() if isinstance(item, dict) else item)
        if not children_done:
            if id(item) in pending:  # a cycle: counted once here, reported by validation
                continue
            pending.add(id(item))
            stack.append((item, True))
            stack.extend((child, False) for child in children)
            continue
        pending.discard(id(item))
        count, depth = 1, 1
        _check_definition_parts(item, document)
        for child in children:
            child_count, child_depth = sizes.get(id(child), (1, 0))
            count += child_count
            depth = max(depth, child_depth + 1)
        sizes[id(item)] = (count, depth)
        _check_expanded(count, depth, limits)


def _check_expanded(count: int, depth: int, limits: Limits) -> None:
    if count > limits.definition_nodes:
        raise ValueLimitExceeded(
            f"DEFINITION_NODES_LIMIT: the definition expands to more than "
            f"{limits.definition_nodes} values (YAML aliases counted each time they are used)",
            limit="definition_nodes",
        )
    if depth > limits.value_depth:
        raise ValueLimitExceeded(
            f"VALUE_DEPTH_LIMIT: the definition is nested deeper than {limits.value_depth}",
            limit="value_depth",
        )


_JSON_SCALARS: Final = (str, int, float, bool, type(None), date, dict, list)
"""What YAML's safe loader makes that JSON holds (a date as its text; containers walked)."""
_YAML_TAGS: Final = {"bytes": "!!binary", "set": "!!set", "tuple": "!!omap or !!pairs"}


def _check_definition_parts(container: dict[Any, Any] | list[Any], document: Any) -> None:
    """Refuse a key or value of ``container`` that cannot be stored (the path found only then)."""
    pairs = container.items() if isinstance(container, dict) else enumerate(container)
    for key, value in pairs:
        for part, at_key in ((key, False), (value, True)):
            if isinstance(part, str):
                if "\x00" in part:
                    path = (*_path_to(document, container), *([key] if at_key else []))
                    _check_characters(part, "the definition", path)
            elif not isinstance(part, _JSON_SCALARS):
                path = (*_path_to(document, container), *([key] if at_key else []))
                tag = _YAML_TAGS.get(type(part).__name__, type(part).__name__)
                raise UnstorableValue(
                    f"VALUE_NOT_JSON: the definition holds a YAML {tag} value at "
                    f"{format_path(path)}, which JSON cannot represent",
                    code="VALUE_NOT_JSON",
                    path=path,
                )


def _path_to(document: Any, wanted: Any) -> tuple[PathPart, ...]:
    """The path of the first way to the container ``wanted`` (each shared object walked once)."""
    seen: set[int] = set()
    stack: list[tuple[Any, tuple[PathPart, ...]]] = [(document, ())]
    while stack:
        item, path = stack.pop()
        if item is wanted:
            return path
        if isinstance(item, dict | list) and id(item) not in seen:
            seen.add(id(item))
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            stack.extend((child, (*path, key)) for key, child in pairs)
    return ()


def _check_characters(text: str, what: str, path: tuple[PathPart, ...]) -> None:
    if "\x00" in text:
        where = f" at {format_path(path)}" if path else ""
        raise UnstorableValue(
            f"VALUE_NUL_CHARACTER: {what} holds a string with a NUL character (\\u0000)"
            f"{where}, which cannot be stored",
            path=path,
        )


def _scalar_size(item: Any) -> int:
    if isinstance(item, str):
        return len(item) + 2
    if item is None or isinstance(item, bool):
        return 5
    if isinstance(item, int):
        return len(str(item)) if abs(item) >= 10**18 else 8
    return 8
