"""Dialects: documented leniencies applied to a document before validation.

Only one dialect exists, ``sonataflow``: workflows written for SonataFlow
often leave out the event a callback state or an ``eventRef`` action waits
for. When the workflow defines exactly one consumed event, that event is the
one meant, and the dialect fills it in; otherwise validation reports the
missing reference as usual.

SonataFlow's expressions read secrets as ``$SECRET.name`` (or
``$SECRET["name"]``) without declaring them. The dialect adds every name so
read to the definition's ``secrets``: the workflow then names them like any
other (a server gives only granted ones), and its interpreter offers
``$SECRET`` as the same object as ``$SECRETS``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

DIALECTS = ("sonataflow",)
"""The dialects Tideflow knows."""
_SECRET_READ: Final = re.compile(
    r"""\$SECRET(?:\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*"([^"\\]+)"\s*\])"""
)


def apply_dialect(doc: Mapping[str, Any], dialect: str | None) -> Mapping[str, Any]:
    """Return ``doc`` with the leniencies of ``dialect`` applied (``doc`` itself if none).

    Args:
        doc: A parsed definition whose external documents are inlined.
        dialect: ``"sonataflow"`` or ``None``.
    """
    if dialect != "sonataflow":
        return doc
    doc = _declare_secret_reads(doc)
    event = _only_consumed_event(doc)
    states = doc.get("states")
    if event is None or not isinstance(states, list):
        return doc
    return {**doc, "states": [_infer_events(s, event) for s in states]}


def _declare_secret_reads(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """``doc`` with the names its expressions read as ``$SECRET.name`` added to ``secrets``."""
    read = [
        match.group(1) or match.group(2)
        for text in _strings(doc)
        for match in _SECRET_READ.finditer(text)
    ]
    declared = doc.get("secrets")
    if not read or not (declared is None or isinstance(declared, list)):
        return doc
    names = list(dict.fromkeys([*(declared or []), *read]))
    return doc if names == declared else {**doc, "secrets": names}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _only_consumed_event(doc: Mapping[str, Any]) -> str | None:
    events = doc.get("events")
    if not isinstance(events, list):
        return None
    consumed = [
        e.get("name")
        for e in events
        if isinstance(e, Mapping) and e.get("kind", "consumed") == "consumed"
    ]
    return consumed[0] if len(consumed) == 1 and isinstance(consumed[0], str) else None


def _infer_events(state: Any, event: str) -> Any:
    if not isinstance(state, Mapping):
        return state
    state = dict(state)
    if state.get("type") == "callback" and "eventRef" not in state:
        state["eventRef"] = event
    for holder, key in _action_holders(state):
        holder[key] = [_infer_result(a, event) for a in holder[key]]
    if isinstance(state.get("action"), Mapping):
        state["action"] = _infer_result(state["action"], event)
    return state


def _action_holders(state: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """Every (container, key) of an action list in a state, containers copied."""
    if isinstance(state.get("actions"), list):
        yield state, "actions"
    for group in ("onEvents", "branches"):
        items = state.get(group)
        if isinstance(items, list):
            copies = [dict(i) if isinstance(i, Mapping) else i for i in items]
            state[group] = copies
            for item in copies:
                if isinstance(item, dict) and isinstance(item.get("actions"), list):
                    yield item, "actions"


def _infer_result(action: Any, event: str) -> Any:
    if not isinstance(action, Mapping) or not isinstance(action.get("eventRef"), Mapping):
        return action
    ref = action["eventRef"]
    if "resultEventRef" in ref:
        return action
    return {**action, "eventRef": {**ref, "resultEventRef": event}}
