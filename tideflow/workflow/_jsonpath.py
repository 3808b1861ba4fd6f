"""JSONPath expressions (``expressionLang: jsonpath``) on jsonpath-ng's extended parser.

``$`` is the data the expression is evaluated against. As an extension,
``$CONST``, ``$SECRETS``, ``$WORKFLOW`` (any ``$NAME`` followed by ``.``,
``[`` or nothing) root the path at that variable instead: ``$CONST.greeting``
reads ``greeting`` from the workflow's constants.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from jsonpath_ng import jsonpath as jp
from jsonpath_ng.ext.parser import parse as _parse

from tideflow.errors import ExpressionError, PathPart

_VARIABLE_ROOT = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)(?=$|[.\[])")


class JsonPathRunner:
    """A parsed JSONPath that returns every match's value when called.

    Attributes:
        variables: The variable the path is rooted at (empty for ``$``).
    """

    __slots__ = ("_copies", "_path", "_root", "source", "variables")

    def __init__(self, path: Any, root: str | None, source: str) -> None:
        self._path = path
        self._root = root
        self.source = source
        self.variables = (root,) if root else ()
        # jsonpath-ng's filter ([?(...)]) over an object replaces that object by a
        # list of its values *in the data*: filters run on a copy.
        self._copies = "?" in source

    def __call__(self, data: Any, variables: Mapping[str, Any] | None) -> list[Any]:
        if self._root is not None:
            data = (variables or {}).get(self._root)
        if self._copies:
            data = copy.deepcopy(data)
        try:
            return [match.value for match in self._path.find(data)]
        except Exception as exc:  # jsonpath-ng raises plain Exception subclasses
            raise ExpressionError(
                f"cannot evaluate {self.source!r}: {exc}", expression=self.source
            ) from None


def _split_root(body: str) -> tuple[str | None, str]:
    match = _VARIABLE_ROOT.match(body)
    if match is None:
        return None, body
    return match.group(1), "$" + body[match.end() :]


def _parse_path(body: str, source: str) -> Any:
    try:
        return _parse(body)
    except Exception as exc:  # JsonPathParserError, JsonPathLexerError, ...
        raise ExpressionError(
            f"invalid JSONPath expression {source!r}: {exc}", expression=source
        ) from None


def compile_jsonpath(body: str, source: str) -> JsonPathRunner:
    """Parse a JSONPath expression.

    Args:
        body: The expression without ``${ }``.
        source: The text as written, for error messages.

    Raises:
        ExpressionError: The text is not valid JSONPath (jsonpath-ng's message included).
    """
    root, rest = _split_root(body)
    return JsonPathRunner(_parse_path(rest, source), root, source)


def _steps(node: Any, source: str) -> list[PathPart]:
    if isinstance(node, jp.Root | jp.This):
        return []
    if isinstance(node, jp.Child):
        return _steps(node.left, source) + _steps(node.right, source)
    if isinstance(node, jp.Fields) and len(node.fields) == 1 and node.fields[0] != "*":
        return [node.fields[0]]
    if isinstance(node, jp.Index):
        indices = getattr(node, "indices", None) or (getattr(node, "index", None),)
        if len(indices) == 1 and isinstance(indices[0], int):
            return [indices[0]]
    raise ExpressionError(
        f"{source!r} must name one location, like $.customer.name or $.items[0]",
        expression=source,
    )


def to_path(body: str, source: str) -> tuple[PathPart, ...]:
    """Turn a simple JSONPath (``$.a.b[0]``) into ``("a", "b", 0)``.

    Raises:
        ExpressionError: The path uses wildcards, filters, slices or a variable root.
    """
    root, rest = _split_root(body)
    if root is not None:
        raise ExpressionError(
            f"{source!r} must be a location in the state data, not in ${root}",
            expression=source,
        )
    return tuple(_steps(_parse_path(rest, source), source))
