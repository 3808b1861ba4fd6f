"""A small structural checker: declarative specs that explain what is wrong, in our words.

Each spec checks one JSON value at a path and appends :class:`Problem` s to a
:class:`Context`. While walking, specs also record what later passes need:
expressions to compile and names that must resolve (references). One walk
over the document serves structure, references, the graph and expressions.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tideflow.errors import PathPart, Problem
from tideflow.isotime import parse_duration
from tideflow.workflow._defs import normalize_duration

Path = tuple[PathPart, ...]


@dataclass(frozen=True, slots=True)
class Reference:
    """A name that must resolve: a state, function, event, retry or error."""

    kind: str
    """``state``, ``function``, ``event``, ``retry`` or ``error``."""
    name: str
    """The name used."""
    path: Path
    """Where the name is written."""
    role: str = ""
    """What the reference does, e.g. ``transition``, ``consumed``, ``produced``."""

    @property
    def origin(self) -> int | None:
        """Index of the state the reference is written in, if any."""
        if len(self.path) > 1 and self.path[0] == "states" and isinstance(self.path[1], int):
            return self.path[1]
        return None


@dataclass(slots=True)
class Context:
    """What one walk over a document collects."""

    problems: list[Problem] = field(default_factory=list)
    expressions: list[tuple[Path, str, bool]] = field(default_factory=list)
    """(path, text, whole): ``whole`` fields are expressions (bare allowed), others templates."""
    references: list[Reference] = field(default_factory=list)
    dialect: str | None = None
    """``"sonataflow"`` relaxes what SonataFlow accepts (:class:`Lenient`, ``dialect_optional``)."""

    @property
    def sonataflow(self) -> bool:
        """Whether SonataFlow's dialect is on."""
        return self.dialect == "sonataflow"

    def error(self, path: Path, message: str) -> None:
        """Record an error."""
        self.problems.append(Problem(path=path, message=message))

    def warn(self, path: Path, message: str) -> None:
        """Record a warning."""
        self.problems.append(Problem(path=path, message=message, severity="warning"))


def json_type(value: Any) -> str:
    """The JSON type of a value, with its article: ``a string``, ``an object``, ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"


def suggest(name: str, candidates: Iterable[str], cutoff: float = 0.6) -> str:
    """``"; did you mean 'x'?"`` for the closest candidate, or an empty string."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=cutoff)
    return f"; did you mean '{close[0]}'?" if close else ""


def quoted(names: Iterable[str]) -> str:
    """``'a', 'b', 'c'``."""
    return ", ".join(f"'{n}'" for n in names)


class Spec:
    """Checks one value."""

    expects = "a value"

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        """Append a problem to ``ctx`` for everything wrong with ``value``."""

    def accepts(self, value: Any) -> bool:
        """Whether the value's JSON type fits (used by :class:`Either`)."""
        return True


class Anything(Spec):
    """Any JSON value."""


@dataclass(frozen=True)
class Str(Spec):
    """A string, non-empty unless ``min_len`` is 0."""

    min_len: int = 1
    expects = "a string"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str)

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        if not isinstance(value, str):
            ctx.error(path, f"must be {self.expects}, not {json_type(value)}")
        elif len(value.strip()) < self.min_len:
            ctx.error(path, "must not be empty")


class Bool(Spec):
    """``true`` or ``false``."""

    expects = "a boolean (true or false)"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        if not isinstance(value, bool):
            ctx.error(path, f"must be {self.expects}, not {json_type(value)}")


@dataclass(frozen=True)
class Number(Spec):
    """A number within bounds; a string (expression or numeric text) when ``or_string``."""

    minimum: float | None = None
    maximum: float | None = None
    or_string: bool = False

    @property
    def expects(self) -> str:  # type: ignore[override]
        return "a number or a string" if self.or_string else "a number"

    def accepts(self, value: Any) -> bool:
        is_num = isinstance(value, int | float) and not isinstance(value, bool)
        return is_num or (self.or_string and isinstance(value, str))

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        if not self.accepts(value):
            ctx.error(path, f"must be {self.expects}, not {json_type(value)}")
            return
        if isinstance(value, str):
            if "${" in value:
                ctx.expressions.append((path, value, False))
            return
        if self.minimum is not None and value < self.minimum:
            ctx.error(path, f"must be at least {self.minimum:g}, not {value:g}")
        if self.maximum is not None and value > self.maximum:
            ctx.error(path, f"must be at most {self.maximum:g}, not {value:g}")


@dataclass(frozen=True)
class Enum(Spec):
    """One of fixed strings."""

    values: tuple[str, ...]
    note: Mapping[str, str] = field(default_factory=dict)
    """Extra sentences for values that are known but refused."""
    expects = "a string"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str)

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        if not isinstance(value, str):
            ctx.error(path, f"must be one of {quoted(self.values)}, not {json_type(value)}")
        elif value in self.note:
            ctx.error(path, self.note[value])
        elif value not in self.values:
            hint = suggest(value, self.values)
            ctx.error(path, f"must be one of {quoted(self.values)}, not '{value}'{hint}")


class Duration(Spec):
    """An ISO 8601 duration such as ``PT30S``."""

    expects = "an ISO 8601 duration"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str)

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        if not isinstance(value, str):
            ctx.error(path, f"must be an ISO 8601 duration string, not {json_type(value)}")
            return
        if _is_duration(value.strip()):
            return
        repaired = normalize_duration(value)
        if repaired != value and _is_duration(repaired):
            ctx.warn(path, f"'{value}' puts days after 'T'; read as '{repaired}'")
            return
        ctx.error(path, f"'{value}' is not an ISO 8601 duration (examples: PT30S, PT5M, P2D, P2W)")


def _is_duration(text: str) -> bool:
    try:
        parse_duration(text)
    except ValueError:
        return False
    return True


class Expr(Spec):
    """An expression (``${ ... }`` or bare), compiled after the walk."""

    expects = "an expression string"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str)

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        if not isinstance(value, str):
            ctx.error(path, f"must be an expression string, not {json_type(value)}")
        elif not value.strip():
            ctx.error(path, "must not be an empty expression")
        else:
            ctx.expressions.append((path, value, True))


@dataclass(frozen=True)
class Template(Spec):
    """A JSON value whose strings may hold ``${ ... }`` expressions."""

    object_only: bool = False

    @property
    def expects(self) -> str:  # type: ignore[override]
        return "an object" if self.object_only else "a value"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, Mapping) or not self.object_only

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        if not self.accepts(value):
            ctx.error(path, f"must be an object, not {json_type(value)}")
            return
        _collect_templates(value, path, ctx)


def _collect_templates(value: Any, path: Path, ctx: Context) -> None:
    if isinstance(value, str):
        if "${" in value:
            ctx.expressions.append((path, value, False))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _collect_templates(item, (*path, str(key)), ctx)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _collect_templates(item, (*path, index), ctx)


class StrMap(Spec):
    """An object whose values are strings (metadata, context attributes)."""

    expects = "an object"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, Mapping)

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        if not isinstance(value, Mapping):
            ctx.error(path, f"must be an object of strings, not {json_type(value)}")
            return
        for key, item in value.items():
            if not isinstance(item, str):
                ctx.error((*path, str(key)), f"must be a string, not {json_type(item)}")


@dataclass(frozen=True)
class Ref(Spec):
    """A name that must resolve to a definition or a state."""

    kind: str
    role: str = ""
    expects = "a string"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str)

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        if not isinstance(value, str):
            ctx.error(path, f"must be the name of a {self.kind} (a string), not {json_type(value)}")
        elif not value.strip():
            ctx.error(path, f"must name a {self.kind}, not be empty")
        else:
            ctx.references.append(Reference(self.kind, value, path, self.role))


@dataclass(frozen=True)
class ListOf(Spec):
    """An array of items."""

    item: Spec
    min_items: int = 0
    unique: bool = False
    expects = "an array"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, list)

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        if not isinstance(value, list):
            ctx.error(path, f"must be an array, not {json_type(value)}")
            return
        if len(value) < self.min_items:
            ctx.error(path, f"must have at least {self.min_items} item(s)")
        seen: set[str] = set()
        for index, item in enumerate(value):
            if self.unique and isinstance(item, str):
                if item in seen:
                    ctx.error((*path, index), f"'{item}' is listed twice")
                seen.add(item)
            self.item.check(item, (*path, index), ctx)


@dataclass(frozen=True)
class Either(Spec):
    """The first of several specs whose JSON type fits."""

    options: tuple[Spec, ...]

    @property
    def expects(self) -> str:  # type: ignore[override]
        kinds = [o.expects for o in self.options]
        return ", ".join(kinds[:-1]) + f" or {kinds[-1]}" if len(kinds) > 1 else kinds[0]

    def accepts(self, value: Any) -> bool:
        return any(o.accepts(value) for o in self.options)

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        for option in self.options:
            if option.accepts(value):
                option.check(value, path, ctx)
                return
        ctx.error(path, f"must be {self.expects}, not {json_type(value)}")


Rule = Callable[[Mapping[str, Any], Path, Context], None]


@dataclass(frozen=True)
class Lenient(Spec):
    """``strict`` in 0.8, ``sonataflow`` under SonataFlow's dialect."""

    strict: Spec
    sonataflow: Spec

    @property
    def expects(self) -> str:  # type: ignore[override]
        return self.strict.expects

    def accepts(self, value: Any) -> bool:
        return self.strict.accepts(value) or self.sonataflow.accepts(value)

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        (self.sonataflow if ctx.sonataflow else self.strict).check(value, path, ctx)


@dataclass(frozen=True)
class Obj(Spec):
    """An object with known properties.

    Attributes:
        title: How messages name it, with its article (``an action``).
        fields: Property name -> spec.
        required: Properties that must be present.
        exactly_one: Groups of properties of which exactly one must be present.
        at_most_one: Groups of properties of which at most one may be present.
        extra: Whether unknown properties are allowed.
        rules: Further checks, run when the object is well-typed.
        hints: Extra sentences for unknown properties people often write.
        dialect_optional: Required properties SonataFlow's dialect lets go.
    """

    title: str
    fields: Mapping[str, Spec]
    required: tuple[str, ...] = ()
    exactly_one: tuple[tuple[str, ...], ...] = ()
    at_most_one: tuple[tuple[str, ...], ...] = ()
    extra: bool = False
    rules: tuple[Rule, ...] = ()
    hints: Mapping[str, str] = field(default_factory=dict)
    dialect_optional: tuple[str, ...] = ()
    expects = "an object"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, Mapping)

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        if not isinstance(value, Mapping):
            ctx.error(path, f"must be {self.title} (an object), not {json_type(value)}")
            return
        for key in self.required:
            if key not in value and not (ctx.sonataflow and key in self.dialect_optional):
                ctx.error((*path, key), f"missing: {self.title} needs '{key}'")
        for key, item in value.items():
            spec = self.fields.get(key)
            if spec is not None:
                spec.check(item, (*path, key), ctx)
            elif not self.extra:
                ctx.error((*path, str(key)), self._unknown(str(key)))
        self._check_groups(value, path, ctx)
        for rule in self.rules:
            rule(value, path, ctx)

    def _unknown(self, key: str) -> str:
        hint = self.hints.get(key) or suggest(key, self.fields, cutoff=0.75)
        if hint and not hint.startswith(";"):
            hint = f"; {hint}"
        return f"not a property of {self.title}{hint}"

    def _check_groups(self, value: Mapping[str, Any], path: Path, ctx: Context) -> None:
        for group in self.exactly_one:
            present = [k for k in group if k in value]
            if not present:
                ctx.error(path, f"{self.title} needs one of {quoted(group)}")
            elif len(present) > 1:
                ctx.error((*path, present[1]), _both(self.title, present))
        for group in self.at_most_one:
            present = [k for k in group if k in value]
            if len(present) > 1:
                ctx.error((*path, present[1]), _both(self.title, present))


def _both(title: str, present: Sequence[str]) -> str:
    return f"{title} cannot have both {quoted(present[:2])}; keep one"


@dataclass(frozen=True)
class ByType(Spec):
    """Objects told apart by a ``type`` property (the states)."""

    title: str
    variants: Mapping[str, Spec]
    expects = "an object"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, Mapping)

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        if not isinstance(value, Mapping):
            ctx.error(path, f"must be {self.title} (an object), not {json_type(value)}")
            return
        kind = value.get("type")
        if kind is None:
            ctx.error(
                (*path, "type"), f"missing: {self.title} needs 'type' ({quoted(self.variants)})"
            )
        elif not isinstance(kind, str) or kind not in self.variants:
            shown = f"'{kind}'" if isinstance(kind, str) else json_type(kind)
            hint = suggest(kind, self.variants) if isinstance(kind, str) else ""
            ctx.error((*path, "type"), f"must be one of {quoted(self.variants)}, not {shown}{hint}")
        else:
            self.variants[kind].check(value, path, ctx)
