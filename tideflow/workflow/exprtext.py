"""The text of workflow expressions: ``${ ... }`` wrappers, interpolation, ``fn:`` references.

Serverless Workflow 0.8 writes expressions as ``${ expression }``; some fields
(conditions, ``toStateData``, expression-function operations) also accept the
bare expression. This module only looks at text -- it compiles nothing -- so
the loader, the validator and :mod:`tideflow.workflow.expressions` share one
reading of where an expression starts and ends.

Braces inside the expression (jq object construction ``{a: .b}``) and inside
string literals (``"}"``) are skipped, so ``${ {a: "}"} }`` is one expression.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tideflow.errors import ExpressionError

_FN_NAME = re.compile(r"fn:([A-Za-z_][\w\-]*)")
_FN_WHOLE = re.compile(r"^fn:\s*([^\s()|]+)$")


def _skip_string(text: str, start: int) -> int:
    """Return the index just after the string literal that opens at ``start``."""
    i = start + 1
    depth = 0  # nesting of jq string interpolation \( ... )
    while i < len(text):
        char = text[i]
        if char == "\\":
            if text.startswith("\\(", i):
                depth += 1
            i += 2
            continue
        if depth and char == "(":
            depth += 1
        elif depth and char == ")":
            depth -= 1
        elif not depth and char == '"':
            return i + 1
        i += 1
    return len(text)


def _closing_brace(text: str, start: int) -> int:
    """Return the index of the ``}`` that closes the ``{`` at ``start``, or -1."""
    depth = 0
    i = start
    while i < len(text):
        char = text[i]
        if char == '"':
            i = _skip_string(text, i)
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def segments(text: str) -> list[tuple[bool, str]]:
    """Split text into literal parts and ``${ }`` expressions.

    Args:
        text: A string that may contain ``${ ... }`` expressions.

    Returns:
        ``(is_expression, part)`` pairs in order; expression parts are the
        unwrapped expression text. An unclosed ``${`` stays literal.
    """
    out: list[tuple[bool, str]] = []
    pos = 0
    while True:
        start = text.find("${", pos)
        if start < 0:
            break
        end = _closing_brace(text, start + 1)
        if end < 0:
            break
        if start > pos:
            out.append((False, text[pos:start]))
        out.append((True, text[start + 2 : end].strip()))
        pos = end + 1
    if pos < len(text):
        out.append((False, text[pos:]))
    return out


def is_expression(value: Any) -> bool:
    """Tell whether ``value`` is a string made of exactly one ``${ ... }``.

    Surrounding whitespace is allowed (the spec's own examples write
    ``"${ .greetings } "``); a string with text around the expression is an
    interpolation, not an expression (see :func:`is_interpolation`).
    """
    if not isinstance(value, str):
        return False
    text = value.strip()
    return text.startswith("${") and _closing_brace(text, 1) == len(text) - 1


def is_interpolation(value: Any) -> bool:
    """Tell whether ``value`` is a string mixing literal text and ``${ }`` expressions.

    Example: ``"Book ${ .book.title } is already on loan"``. 0.8 does not define
    these; Tideflow evaluates each expression and splices the results in.
    """
    if not isinstance(value, str) or "${" not in value or is_expression(value):
        return False
    return any(is_expr for is_expr, _ in segments(value))


def unwrap(text: str) -> str:
    """Strip the ``${ }`` wrapper and surrounding whitespace; bare text is only stripped."""
    stripped = text.strip()
    if is_expression(stripped):
        return stripped[2:-1].strip()
    return stripped


def function_reference(text: str) -> str | None:
    """Return ``name`` when ``text`` is ``${ fn:name }`` (or bare ``fn:name``), else None."""
    match = _FN_WHOLE.match(unwrap(text))
    return match.group(1) if match else None


def referenced_functions(text: str) -> list[str]:
    """Names of all ``fn:name`` references in an expression (outside string literals)."""
    return [m.group(1) for m in _fn_matches(unwrap(text))]


def _fn_matches(body: str) -> list[re.Match[str]]:
    found: list[re.Match[str]] = []
    i = 0
    while i < len(body):
        if body[i] == '"':
            i = _skip_string(body, i)
            continue
        match = _FN_NAME.match(body, i)
        boundary = i == 0 or not (body[i - 1].isalnum() or body[i - 1] in "_$.")
        if match and boundary:
            found.append(match)
            i = match.end()
            continue
        i += 1
    return found


def resolve_functions(
    text: str, functions: Mapping[str, str], *, _seen: tuple[str, ...] = ()
) -> str:
    """Replace ``fn:name`` references with the named expression functions' operations.

    Args:
        text: An expression, wrapped in ``${ }`` or bare.
        functions: Expression-function name -> its ``operation`` (wrapped or bare).

    Returns:
        The bare expression with each reference replaced by ``(operation)``;
        text without references comes back unwrapped and otherwise unchanged.

    Raises:
        ExpressionError: A reference names no expression function, or
            functions refer to each other in a cycle.
    """
    body = unwrap(text)
    whole = function_reference(body)
    if whole is not None and whole in functions and whole not in _seen:
        # A whole-expression reference needs no parentheses (JSONPath has none).
        return resolve_functions(functions[whole], functions, _seen=(*_seen, whole))
    matches = _fn_matches(body)
    if not matches:
        return body
    out: list[str] = []
    pos = 0
    for match in matches:
        name = match.group(1)
        if name not in functions:
            known = ", ".join(sorted(functions)) or "none"
            raise ExpressionError(
                f"fn:{name} names no expression function (defined: {known})", expression=text
            )
        if name in _seen:
            chain = " -> ".join((*_seen, name))
            raise ExpressionError(f"expression functions call each other: {chain}", expression=text)
        inner = resolve_functions(functions[name], functions, _seen=(*_seen, name))
        out.append(body[pos : match.start()])
        out.append(f"({inner})")
        pos = match.end()
    out.append(body[pos:])
    return "".join(out)
