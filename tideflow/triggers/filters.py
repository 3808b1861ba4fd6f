"""CloudEvents Subscriptions API filter dialects, compiled once into a predicate.

A subscription's ``filters`` is a list of filter objects, ANDed; an absent or
empty list matches every event. Each object names exactly one dialect:

- ``{"exact": {attr: value, ...}}`` -- every attribute equals its value;
- ``{"prefix": {...}}`` / ``{"suffix": {...}}`` -- starts / ends with it;
- ``{"all": [filter, ...]}`` / ``{"any": [filter, ...]}`` -- nested AND / OR;
- ``{"not": filter}`` -- the negation;
- ``{"sql": "expression"}`` -- a CloudEvents SQL expression (``cesql``),
  true only when it yields Boolean ``true`` without error.

Comparisons are case-sensitive on the attribute's canonical string form
(Integers in base 10, Booleans ``true``/``false``). An attribute the event
lacks (or sets to ``null``) makes ``exact``, ``prefix`` and ``suffix`` false,
as the equivalent CESQL does in the TCK's "SubscriptionsAPI Recreations".
Events are mappings in CloudEvents JSON form. Everything here is pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tideflow.errors import CesqlParseError, InvalidFilter, PathPart
from tideflow.triggers.cesql import compile_expression
from tideflow.triggers.cesql.values import TYPE_NAMES, from_json, to_string

Event = Mapping[str, Any]
Predicate = Callable[[Event], bool]

DIALECTS = ("exact", "prefix", "suffix", "all", "any", "not", "sql")
"""The supported dialects: the six required ones and the optional ``sql``."""

_ATTRIBUTE_NAME = re.compile(r"[a-z0-9]+")
_NOT_ATTRIBUTES = frozenset({"data"})


@dataclass(frozen=True, slots=True)
class CompiledFilters:
    """The filters of one subscription, validated and compiled.

    Attributes:
        filters: The filter objects as given.
        matches: The predicate: ``True`` when the event passes every filter.
    """

    filters: tuple[Mapping[str, Any], ...]
    matches: Predicate

    def __call__(self, event: Event) -> bool:
        """Same as :attr:`matches`."""
        return self.matches(event)


def compile_filters(filters: Any, *, path: Sequence[PathPart] = ("filters",)) -> CompiledFilters:
    """Validate and compile a subscription's ``filters`` list.

    Args:
        filters: A list of filter objects (parsed JSON), or ``None``.
        path: Where the list sits in the request, for error messages.

    Raises:
        InvalidFilter: Naming the path of the first invalid filter, e.g.
            ``filters[1].sql: parse error at column 12: ...``.
    """
    base = tuple(path)
    if filters is None:
        return CompiledFilters((), _always)
    if not isinstance(filters, list | tuple):
        raise InvalidFilter("must be a list of filter objects", path=base)
    predicates = tuple(
        compile_filter(item, path=(*base, index)) for index, item in enumerate(filters)
    )
    return CompiledFilters(tuple(filters), _all(predicates))


def compile_filter(spec: Any, *, path: Sequence[PathPart] = ("filter",)) -> Predicate:
    """Validate and compile one filter object into a predicate.

    Raises:
        InvalidFilter: Naming the path of the problem.
    """
    here = tuple(path)
    if not isinstance(spec, Mapping):
        raise InvalidFilter(f"a filter must be an object, found {_json_type(spec)}", path=here)
    if len(spec) != 1:
        found = ", ".join(map(str, spec)) or "none"
        raise InvalidFilter(
            f"a filter object names exactly one dialect, found {len(spec)} ({found})", path=here
        )
    ((dialect, body),) = spec.items()
    compiler = _COMPILERS.get(dialect)
    if compiler is None:
        raise InvalidFilter(
            f"unknown filter dialect {dialect!r} (supported: {', '.join(DIALECTS)})", path=here
        )
    return compiler(body, (*here, dialect))


# -- leaves: exact, prefix, suffix -------------------------------------------


def _text(raw: Any) -> str | None:
    """The canonical string form of a raw attribute value, ``None`` when unset."""
    value = from_json(raw)
    return None if value is None else to_string(value)


def _attribute_map(body: Any, here: tuple[PathPart, ...]) -> tuple[tuple[str, str], ...]:
    if not isinstance(body, Mapping) or not body:
        raise InvalidFilter(
            "must be a non-empty object of attribute names to string values", path=here
        )
    items: list[tuple[str, str]] = []
    for name, value in body.items():
        where = (*here, str(name))
        if not isinstance(name, str) or not _ATTRIBUTE_NAME.fullmatch(name):
            raise InvalidFilter(
                f"{name!r} is not an attribute name (lower-case letters and digits)", path=where
            )
        if name in _NOT_ATTRIBUTES:
            raise InvalidFilter(f"{name!r} is not a context attribute", path=where)
        if not isinstance(value, str) or not value:
            raise InvalidFilter(
                f"the value must be a non-empty string, found {_json_type(value)}", path=where
            )
        items.append((name, value))
    return tuple(items)


def _exact(body: Any, here: tuple[PathPart, ...]) -> Predicate:
    items = _attribute_map(body, here)
    if len(items) == 1:
        ((name, expected),) = items

        def exact_one(event: Event) -> bool:
            raw = event.get(name)
            return (raw if type(raw) is str else _text(raw)) == expected

        return exact_one

    def exact(event: Event) -> bool:
        for name, expected in items:
            raw = event.get(name)
            if (raw if type(raw) is str else _text(raw)) != expected:
                return False
        return True

    return exact


def _affix(test: Callable[[str, str], bool]) -> Callable[[Any, tuple[PathPart, ...]], Predicate]:
    """A ``prefix`` or ``suffix`` compiler around ``str.startswith``/``str.endswith``."""

    def compile_affix(body: Any, here: tuple[PathPart, ...]) -> Predicate:
        items = _attribute_map(body, here)

        def affix(event: Event) -> bool:
            for name, wanted in items:
                raw = event.get(name)
                text = raw if type(raw) is str else _text(raw)
                if text is None or not test(text, wanted):
                    return False
            return True

        return affix

    return compile_affix


# -- nesting: all, any, not --------------------------------------------------


def _always(event: Event) -> bool:
    return True


def _all(predicates: tuple[Predicate, ...]) -> Predicate:
    if not predicates:
        return _always
    if len(predicates) == 1:
        return predicates[0]

    def all_(event: Event) -> bool:
        # A plain loop: all() over a generator costs a generator per event.
        for predicate in predicates:  # noqa: SIM110
            if not predicate(event):
                return False
        return True

    return all_


def _nested(body: Any, here: tuple[PathPart, ...]) -> tuple[Predicate, ...]:
    if not isinstance(body, list | tuple) or not body:
        raise InvalidFilter("must be a non-empty list of filter objects", path=here)
    return tuple(compile_filter(item, path=(*here, index)) for index, item in enumerate(body))


def _all_dialect(body: Any, here: tuple[PathPart, ...]) -> Predicate:
    return _all(_nested(body, here))


def _any_dialect(body: Any, here: tuple[PathPart, ...]) -> Predicate:
    predicates = _nested(body, here)
    if len(predicates) == 1:
        return predicates[0]

    def any_(event: Event) -> bool:
        for predicate in predicates:  # noqa: SIM110 -- hot path, see all_
            if predicate(event):
                return True
        return False

    return any_


def _not_dialect(body: Any, here: tuple[PathPart, ...]) -> Predicate:
    predicate = compile_filter(body, path=here)
    return lambda event: not predicate(event)


# -- sql ---------------------------------------------------------------------


def _sql(body: Any, here: tuple[PathPart, ...]) -> Predicate:
    if not isinstance(body, str) or not body.strip():
        raise InvalidFilter(
            f"must be a CloudEvents SQL expression string, found {_json_type(body)}", path=here
        )
    try:
        expression = compile_expression(body)
    except CesqlParseError as exc:
        raise InvalidFilter(exc.message, path=here) from exc
    if expression.problems:
        raise InvalidFilter(expression.problems[0], path=here)
    if expression.type not in (None, bool):
        raise InvalidFilter(
            f"the expression yields {TYPE_NAMES[expression.type]}, a filter needs a Boolean",
            path=here,
        )
    return expression.matches


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "an empty string" if not value else "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


_COMPILERS: dict[str, Callable[[Any, tuple[PathPart, ...]], Predicate]] = {
    "exact": _exact,
    "prefix": _affix(str.startswith),
    "suffix": _affix(str.endswith),
    "all": _all_dialect,
    "any": _any_dialect,
    "not": _not_dialect,
    "sql": _sql,
}
