"""AsyncAPI documents: find an operation, its channel and its server.

Pure: the document's text in, an :class:`AsyncOperation` out. AsyncAPI 2.x
(``channels.<address>.publish|subscribe.operationId``) and 3.0
(``operations.<id>.action: send|receive`` with a ``channel`` ``$ref``). In a
2.x document ``publish`` is read as SonataFlow reads it: the workflow sends
to the channel; ``subscribe``: the workflow receives from it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from tideflow.runtime.functions.types import call_error


@dataclass(frozen=True, slots=True)
class AsyncServer:
    """A server of an AsyncAPI document."""

    name: str
    url: str
    """``host[:port]`` or a URL, as the document gives it (variables at their defaults)."""
    protocol: str


@dataclass(frozen=True, slots=True)
class AsyncOperation:
    """An operation found in an AsyncAPI document."""

    operation_id: str
    sends: bool
    """True: the workflow publishes to the channel; False: it receives from it."""
    channel: str
    """The channel's address (a topic, subject, queue, stream or path)."""
    servers: tuple[AsyncServer, ...]
    """The servers the channel is on (all of the document's when it names none)."""


def parse_asyncapi(text: str, source: str) -> Mapping[str, Any]:
    """The document as JSON values, or a clear error."""
    try:
        raw = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise call_error(
            f"AsyncAPI document {source} is neither JSON nor YAML", code="InvalidDocument"
        ) from exc
    if not isinstance(raw, dict) or not str(raw.get("asyncapi", "")).startswith(("2.", "3.")):
        raise call_error(
            f"AsyncAPI document {source} is not AsyncAPI 2.x or 3.x (no 'asyncapi' version)",
            code="InvalidDocument",
        )
    return raw


def find_async_operation(doc: Mapping[str, Any], operation_id: str, source: str) -> AsyncOperation:
    """The operation ``operation_id`` of the document, or an error listing the known ones."""
    servers = _servers(doc.get("servers"))
    found = (
        _operation_v3(doc, operation_id, servers)
        if str(doc["asyncapi"]).startswith("3.")
        else _operation_v2(doc, operation_id, servers)
    )
    if found is None:
        known = ", ".join(sorted(_operation_ids(doc))) or "none"
        raise call_error(
            f"AsyncAPI document {source} has no operation {operation_id!r} (it has: {known})",
            code="UnknownOperation",
        )
    return found


def _servers(raw: Any) -> dict[str, AsyncServer]:
    found = {}
    for name, server in (raw or {}).items() if isinstance(raw, Mapping) else ():
        if not isinstance(server, Mapping):
            continue
        url = str(server.get("url") or server.get("host") or "")
        for variable, spec in (server.get("variables") or {}).items():
            if isinstance(spec, Mapping) and "default" in spec:
                url = url.replace("{" + variable + "}", str(spec["default"]))
        found[str(name)] = AsyncServer(str(name), url, str(server.get("protocol", "")).lower())
    return found


def _named(names: Any, servers: dict[str, AsyncServer]) -> tuple[AsyncServer, ...]:
    refs = [str(n.get("$ref", "")).rsplit("/", 1)[-1] if isinstance(n, Mapping) else str(n)
            for n in (names or [])]  # fmt: skip
    chosen = [servers[n] for n in refs if n in servers]
    return tuple(chosen) if chosen else tuple(servers.values())


def _operation_v2(
    doc: Mapping[str, Any], operation_id: str, servers: dict[str, AsyncServer]
) -> AsyncOperation | None:
    for address, channel in (doc.get("channels") or {}).items():
        if not isinstance(channel, Mapping):
            continue
        for action in ("publish", "subscribe"):
            op = channel.get(action)
            if isinstance(op, Mapping) and op.get("operationId") == operation_id:
                return AsyncOperation(
                    operation_id, action == "publish", str(address),
                    _named(channel.get("servers"), servers),
                )  # fmt: skip
    return None


def _operation_v3(
    doc: Mapping[str, Any], operation_id: str, servers: dict[str, AsyncServer]
) -> AsyncOperation | None:
    op = (doc.get("operations") or {}).get(operation_id)
    if not isinstance(op, Mapping):
        return None
    ref = str((op.get("channel") or {}).get("$ref", ""))
    name = ref.rsplit("/", 1)[-1]
    channel = (doc.get("channels") or {}).get(name)
    if not isinstance(channel, Mapping):
        raise call_error(
            f"operation {operation_id!r} names channel {ref!r}, which the document lacks",
            code="InvalidDocument",
        )
    address = str(channel.get("address") or name)
    return AsyncOperation(
        operation_id, op.get("action") == "send", address, _named(channel.get("servers"), servers)
    )


def _operation_ids(doc: Mapping[str, Any]) -> list[str]:
    if str(doc["asyncapi"]).startswith("3."):
        return [str(k) for k in (doc.get("operations") or {})]
    return [
        str(op["operationId"])
        for channel in (doc.get("channels") or {}).values()
        if isinstance(channel, Mapping)
        for action in ("publish", "subscribe")
        if isinstance(op := channel.get(action), Mapping) and "operationId" in op
    ]
