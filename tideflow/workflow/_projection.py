"""Which top-level fields of its input a jq expression reads, when that is certain (pure).

jq gets its input converted to its own values at every evaluation, so an
expression such as ``.sum + $n`` over state data that also holds a
10,000-item collection pays for the whole collection each time: a loop of
such evaluations (a 1.0 ``for``, a ``foreach`` over a nested collection, a
switch in a loop) is quadratic. When the text stays within a small part of
jq -- paths from the top of the input (``.a``, ``.a.b``, ``.a[0]``,
``.a[.i]``, ``.a?``), variables and their paths, number and plain string
literals, ``true``/``false``/``null``, arithmetic, comparisons,
``and``/``or``, ``//``, parentheses, ``,`` and array construction -- it
cannot read anything of an object input but those fields, so the evaluator
hands it only them, and its outputs are the same.

Anything else gives ``None`` (the whole input, as before): a pipe or ``as``
(``.`` is then something else), a function, keyword or ``not``, ``.`` alone,
``..``, ``.[...]``, ``."name"``, object construction (``{a}`` reads ``.a``
implicitly), string interpolation, formats, comments.
"""

from __future__ import annotations

import re

__all__ = ["read_fields"]

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<string>"(?:[^"\\]|\\[^(])*")
    | (?P<field>\.[A-Za-z_][A-Za-z0-9_]*)
    | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<var>\$[A-Za-z_][A-Za-z0-9_]*)
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op>==|!=|<=|>=|//|[-+*/%<>()\[\],?])
    """,
    re.VERBOSE,
)
_WORDS = frozenset({"and", "or", "true", "false", "null"})
# After these a field goes on with the term before it (`$x.a`, `.a.b`, `.a[0].b`, `(.a).b`),
# instead of reading the input's top level.
_TERM_ENDS = frozenset({"]", ")", "?", "<field>", "<var>", "<string>", "<number>"})


def read_fields(body: str) -> tuple[str, ...] | None:
    """The top-level fields ``body`` reads of an object input, in order; ``None`` when it
    may read more (see the module docs).

    Args:
        body: The jq expression without its ``${ }`` wrapper.
    """
    fields: dict[str, None] = {}
    previous = ""
    pos = 0
    while pos < len(body):
        match = _TOKEN.match(body, pos)
        if match is None:
            return None
        pos = match.end()
        kind = match.lastgroup
        text = match.group()
        if kind == "space":
            continue
        if kind == "word" and text not in _WORDS:
            return None
        if kind == "field" and previous not in _TERM_ENDS:
            fields[text[1:]] = None
        previous = text if kind in ("op", "word") else f"<{kind}>"
    return tuple(fields)
