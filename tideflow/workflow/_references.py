"""Reference checks: every name a document uses must be defined, once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tideflow.errors import format_path
from tideflow.workflow._schema import Context, Reference, suggest

_SECTIONS = {
    "function": "functions",
    "event": "events",
    "retry": "retries",
    "error": "errors",
    "auth": "auth",
}


@dataclass(frozen=True, slots=True)
class Names:
    """The names a document defines, per kind; None when a section is an unread external."""

    by_kind: Mapping[str, Mapping[str, Mapping[str, Any]] | None]
    states: Mapping[str, int]
    """State name or id -> index."""


def _named_items(items: Any) -> list[tuple[int, Mapping[str, Any], str]]:
    if not isinstance(items, list):
        return []
    return [
        (i, item, item["name"])
        for i, item in enumerate(items)
        if isinstance(item, Mapping) and isinstance(item.get("name"), str)
    ]


def collect_names(doc: Mapping[str, Any], ctx: Context) -> Names:
    """Index the definitions and states by name, reporting duplicates."""
    by_kind: dict[str, Mapping[str, Mapping[str, Any]] | None] = {}
    for kind, section in _SECTIONS.items():
        value = doc.get(section)
        if isinstance(value, str):
            by_kind[kind] = None  # an external document that could not be read
            continue
        found: dict[str, Mapping[str, Any]] = {}
        for index, item, name in _named_items(value):
            if name in found:
                ctx.error((section, index, "name"), f"duplicate {kind} name '{name}'")
            found.setdefault(name, item)
        by_kind[kind] = found
    states: dict[str, int] = {}
    for index, _item, name in _named_items(doc.get("states")):
        if name in states:
            first = format_path(("states", states[name]))
            ctx.error(("states", index, "name"), f"duplicate state name '{name}' (see {first})")
        states.setdefault(name, index)
    for index, item, _ in _named_items(doc.get("states")):
        state_id = item.get("id")
        if isinstance(state_id, str) and state_id not in states:
            states[state_id] = index
    return Names(by_kind=by_kind, states=states)


def check_references(references: Sequence[Reference], names: Names, ctx: Context) -> None:
    """Report every reference that does not resolve (with a did-you-mean)."""
    for ref in references:
        if ref.kind == "state":
            if ref.name not in names.states:
                candidates = list(names.states)
                ctx.error(ref.path, f"no state named '{ref.name}'{suggest(ref.name, candidates)}")
            continue
        defined = names.by_kind.get(ref.kind)
        if defined is None:
            continue
        item = defined.get(ref.name)
        if item is None:
            ctx.error(ref.path, _missing(ref, defined))
        elif ref.kind == "event" and ref.role in ("consumed", "produced") and not ctx.sonataflow:
            # SonataFlow never reads an event's kind: any event can be produced or consumed
            kind = item.get("kind", "consumed")
            if kind != ref.role and kind in ("consumed", "produced"):
                ctx.error(
                    ref.path,
                    f"event '{ref.name}' is {kind}, but this reference needs a {ref.role} event",
                )


def _missing(ref: Reference, defined: Mapping[str, Any]) -> str:
    section = _SECTIONS[ref.kind]
    if not defined:
        return f"no {ref.kind} named '{ref.name}' (the workflow defines no {section})"
    return f"no {ref.kind} named '{ref.name}'{suggest(ref.name, defined)}"


__all__ = ["Names", "check_references", "collect_names"]
