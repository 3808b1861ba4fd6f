"""A fast path for the commonest jq expressions: plain paths such as ``.customer.name``.

Handing jq the whole state data costs a JSON round trip proportional to the
data's size; most workflow expressions only pick a value out of it
(``.customer.name``, ``.items[0]``, ``$CONST.url``). Those are walked here in
Python with jq's semantics: a step into ``null`` gives ``null``, a missing key
gives ``null``, an index outside an array gives ``null``, a negative index
counts from the end. Anything else -- a key into an array or a string, an
index into an object -- is a jq error, so the caller falls back to jq, which
raises it with jq's own message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

Step = str | int

MISMATCH: Any = object()
"""Returned by :func:`walk` when jq must decide (it will raise an error)."""

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_STEP = re.compile(
    rf"\.(?P<ident>{_IDENT})"
    r"|\.?\[(?P<index>-?\d+)\]"
    r'|\.?\["(?P<bracketed>[^"\\]*)"\]'
    r'|\."(?P<quoted>[^"\\]*)"'
)
_ROOT = re.compile(rf"\$(?P<var>{_IDENT})")


def parse(body: str) -> tuple[str | None, tuple[Step, ...]] | None:
    """Recognise a plain path; return ``(variable or None, steps)`` or None.

    ``.`` is the identity (no steps); ``$NAME`` roots the path at a variable.
    """
    text = body.strip()
    if text == ".":
        return None, ()
    root: str | None = None
    pos = 0
    if text.startswith("$"):
        match = _ROOT.match(text)
        if match is None:
            return None
        root, pos = match.group("var"), match.end()
    elif not text.startswith("."):
        return None
    steps: list[Step] = []
    while pos < len(text):
        match = _STEP.match(text, pos)
        if match is None:
            return None
        if match.group("index") is not None:
            steps.append(int(match.group("index")))
        else:
            steps.append(
                next(g for g in match.group("ident", "bracketed", "quoted") if g is not None)
            )
        pos = match.end()
    return root, tuple(steps)


def walk(data: Any, steps: tuple[Step, ...]) -> Any:
    """Follow ``steps`` into ``data`` as jq would; :data:`MISMATCH` where jq would fail."""
    for step in steps:
        if data is None:
            continue
        if isinstance(step, str):
            if not isinstance(data, Mapping):
                return MISMATCH
            data = data.get(step)
        elif isinstance(data, list | tuple):
            data = data[step] if -len(data) <= step < len(data) else None
        else:
            return MISMATCH
    return data


_SCALARS = frozenset({str, int, float, bool, type(None)})


def copy_json(value: Any) -> Any:
    """Copy the containers of a JSON value (as jq's output would be a fresh value).

    Scalars are told by their exact type before any call or ABC check: a
    200,000-number array costs milliseconds, not most of a second.
    """
    if type(value) in _SCALARS:
        return value
    if isinstance(value, Mapping):
        return {
            key: item if type(item) in _SCALARS else copy_json(item) for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [item if type(item) in _SCALARS else copy_json(item) for item in value]
    return value
