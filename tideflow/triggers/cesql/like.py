"""``LIKE`` patterns compiled to fast string predicates.

In a pattern ``%`` matches any run of characters (also none), ``_`` exactly
one character, and every other character itself (case-sensitive). A
backslash before ``%``, ``_`` or another backslash makes that character
literal; any other backslash is itself literal (so ``'ab\\c' LIKE 'ab\\c'``).
Common shapes (exact, prefix, suffix, contains) become ``str`` methods; the
rest a regular expression.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_ANY = object()
_ONE = object()
_ESCAPABLE = "%_\\"


def _parts(pattern: str) -> list[object]:
    """Literal runs (``str``) and the ``_ANY``/``_ONE`` markers, in order."""
    parts: list[object] = []
    literal: list[str] = []
    pos = 0
    while pos < len(pattern):
        char = pattern[pos]
        if char == "\\" and pattern[pos + 1 : pos + 2] in tuple(_ESCAPABLE):
            literal.append(pattern[pos + 1])
            pos += 2
            continue
        if char in "%_":
            if literal:
                parts.append("".join(literal))
                literal = []
            if not (char == "%" and parts and parts[-1] is _ANY):
                parts.append(_ANY if char == "%" else _ONE)
        else:
            literal.append(char)
        pos += 1
    if literal:
        parts.append("".join(literal))
    return parts


def affix(pattern: str) -> tuple[str, str] | None:
    """``("prefix", text)`` or ``("suffix", text)`` when the pattern is only that."""
    parts = _parts(pattern)
    if len(parts) == 2 and isinstance(parts[0], str) and parts[1] is _ANY:
        return "prefix", parts[0]
    if len(parts) == 2 and parts[0] is _ANY and isinstance(parts[1], str):
        return "suffix", parts[1]
    return None


def like_matcher(pattern: str) -> Callable[[str], bool]:
    """Compile a ``LIKE`` pattern into a predicate over strings."""
    parts = _parts(pattern)
    texts = [part for part in parts if isinstance(part, str)]
    shape = tuple("s" if isinstance(part, str) else part for part in parts)
    if not parts:
        return lambda value: value == ""
    if shape == ("s",):
        exact = texts[0]
        return lambda value: value == exact
    if shape == (_ANY,):
        return lambda value: True
    if shape == ("s", _ANY):
        prefix = texts[0]
        return lambda value: value.startswith(prefix)
    if shape == (_ANY, "s"):
        suffix = texts[0]
        return lambda value: value.endswith(suffix)
    if shape == (_ANY, "s", _ANY):
        middle = texts[0]
        return lambda value: middle in value
    regex = "".join(
        ".*" if part is _ANY else "." if part is _ONE else re.escape(str(part)) for part in parts
    )
    fullmatch = re.compile(regex, re.DOTALL).fullmatch
    return lambda value: fullmatch(value) is not None
