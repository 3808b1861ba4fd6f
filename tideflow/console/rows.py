"""Long tables of the console rendered in plain Python: a timeline page holds up to a
thousand rows, which a template renders several times slower. Pure; everything escaped."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

from markupsafe import Markup


def _text(value: Any) -> str:
    return "" if value is None else escape(str(value))


def _detail(entry: Mapping[str, Any]) -> str:
    parts = []
    if entry.get("action"):
        parts.append(_text(entry["action"]))
    if entry.get("attempt"):
        parts.append(f"attempt {_text(entry['attempt'])}")
    duration = entry.get("durationMs")
    if isinstance(duration, int | float):
        parts.append(f"{duration:.1f} ms")
    error = entry.get("error")
    if isinstance(error, Mapping):
        code, message = _text(error.get("code")), _text(error.get("message"))
        parts.append(f'<span class="error-text">{code} {message}</span>')
    if entry.get("event"):
        parts.append(_text(entry["event"]))
    return " ".join(parts)


def timeline_rows(entries: Iterable[Mapping[str, Any]]) -> Markup:
    """The ``<tr>`` rows of a timeline table (at, step, state, detail)."""
    rows = []
    for entry in entries:
        kind = _text(entry.get("kind"))
        rows.append(
            f'<tr class="{kind.replace(".", "-")}"><td><time>{_text(entry.get("at"))}</time></td>'
            f"<td>{kind}</td><td>{_text(entry.get('state'))}</td><td>{_detail(entry)}</td></tr>"
        )
    return Markup("\n".join(rows))  # every value above is escaped
