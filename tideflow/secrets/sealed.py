"""Sealed secrets: how a workflow on Temporal uses secrets it never holds.

A Temporal workflow's inputs, activity inputs and results, signals and
output are stored in the Temporal server's history, so a secret's value must
never reach the workflow. Under ``--engine temporal`` the interpreter's
``$SECRETS`` (and SonataFlow's ``$SECRET``) therefore hold a **seal** per
declared secret -- the text ``[[tideflow.secret.KEY:NAME]]``, no value -- and the
``tideflow.call`` activity replaces the seals in a call's arguments, selection
set and auth properties with the values, read at call time from the worker's
own secret source and grants (:func:`unseal`). ``KEY`` is drawn for each run
(deterministically, so a replay draws it again) and only seals of the run's
key are replaced: a seal written into an event or an input by someone else is
left as the text it is, so data cannot ask a call for a secret. Everything else
the run lets out is redacted from the seals as the PostgreSQL engine redacts the values:
a seal anywhere in an output, state data, timeline, error or produced event
shows as ``***``.

A seal carries a secret as long as expressions only *place* it: as a value
(``${ $SECRETS.key }``), inside an object or array (``${ {k: $SECRETS} }``), in
a string (``"Bearer \\($SECRETS.token)"``, ``"Bearer " + $SECRETS.token``). An
expression that *computes* on a secret -- compares, pipes, encodes, measures,
indexes into it -- would compute on the seal instead of the value and give
another answer than the PostgreSQL engine; :func:`refused_reads` finds those
(a pure look at the document): a deploy under ``--engine temporal`` is refused
and a run refuses to start, naming each expression and its path. Pure code: no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["SecretRead", "refused_reads", "seal", "sealed_names", "sealed_secrets", "unseal"]

_SEAL: Final = re.compile(
    r"\[\[tideflow\.secret\.([0-9a-f]{1,64}):([A-Za-z0-9_][A-Za-z0-9_.-]*)\]\]"
)


def seal(name: str, key: str) -> str:
    """The seal standing for secret ``name`` in a run whose seal key is ``key`` (hex)."""
    return f"[[tideflow.secret.{key}:{name}]]"


def sealed_secrets(names: Iterable[str], key: str) -> dict[str, str]:
    """``$SECRETS`` of a run on Temporal: a seal per declared name."""
    return {name: seal(name, key) for name in names}


def sealed_names(value: Any, key: str) -> list[str]:
    """The secret names whose seals of ``key`` occur anywhere in a JSON value (keys too)."""
    found: dict[str, None] = {}
    for text in _strings(value):
        found.update(dict.fromkeys(n for k, n in _SEAL.findall(text) if k == key))
    return list(found)


def unseal(value: Any, values: Mapping[str, Any], key: str) -> Any:
    """``value`` with each seal of ``key`` replaced by its secret's value.

    A string that is a seal becomes the value itself (an object stays an
    object); a seal inside a longer string becomes the value's text (a string
    as is, anything else as compact JSON, as jq's interpolation writes it).
    A secret missing from ``values`` (not set, or not granted) is ``null``,
    or nothing inside a string -- as ``$SECRETS.name`` is null on the
    PostgreSQL engine. Seals of another key stay as they are.
    """
    if isinstance(value, str):
        whole = _SEAL.fullmatch(value)
        if whole is not None and whole.group(1) == key:
            return values.get(whole.group(2))

        def replaced(match: re.Match[str]) -> str:
            if match.group(1) != key:
                return match.group()
            return _text(values.get(match.group(2)))

        return _SEAL.sub(replaced, value)
    if isinstance(value, Mapping):
        return {unseal(str(k), values, key): unseal(v, values, key) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [unseal(item, values, key) for item in value]
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


# --- the guard: expressions that compute on a secret ------------------------------------


@dataclass(frozen=True, slots=True)
class SecretRead:
    """An expression that reads a secret in a way a seal cannot carry.

    Attributes:
        path: Where the expression is in the document (``("states", 1, "stateDataFilter",
            "output")``).
        expression: The expression as written.
        reason: What it does with the secret.
    """

    path: tuple[str | int, ...]
    expression: str
    reason: str

    @property
    def where(self) -> str:
        """The path as text: ``states[1].stateDataFilter.output``."""
        text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.path)
        return text.removeprefix(".") or "(document)"

    def __str__(self) -> str:
        return f"{self.where}: {self.expression!r} {self.reason}"


_SKIPPED: Final = frozenset({"description", "metadata", "annotations"})
_TOKENS: Final = r"""
      (?P<space>\s+)
    | (?P<secret>VARIABLE(?:\.[A-Za-z_][A-Za-z0-9_]*|\[S\])?)
    | (?P<var>\$[A-Za-z_][A-Za-z0-9_]*)
    | (?P<path>\.[A-Za-z_][A-Za-z0-9_]*|\.)
    | (?P<key>[A-Za-z_][A-Za-z0-9_]*(?=\s*:))
    | (?P<literal>null|true|false|S|-?[0-9]+(?:\.[0-9]+)?)
    | (?P<punct>[{}\[\](),:+])
    """
_VARIABLES: Final = {False: r"\$SECRETS?", True: r"\$secrets"}
"""How expressions name the secrets: 0.8's ``$SECRETS`` (SonataFlow's ``$SECRET``), 1.0's
``$secrets``."""
_READ: Final = {dsl1: re.compile(rf"{v}(?![A-Za-z0-9_])") for dsl1, v in _VARIABLES.items()}
_TOKEN: Final = {
    dsl1: re.compile(_TOKENS.replace("VARIABLE", v), re.VERBOSE) for dsl1, v in _VARIABLES.items()
}
_PLACED: Final = "computes on a secret (only placing one -- as a value, in an object or "
"array, or in a string -- works under --engine temporal: the value never enters the workflow)"
_INTO: Final = "reads into a secret (its parts are not known inside the workflow on Temporal)"
_POLICY: Final = (
    "reads an authentication policy from a secret (not under --engine temporal yet: write "
    "the policy's properties with $secrets, such as {basic: {username: '${ $secrets.user }', "
    "password: '${ $secrets.password }'}})"
)


def refused_reads(document: Any, *, dsl1: bool = False) -> list[SecretRead]:
    """Every expression of a document that computes on its secrets.

    A 0.8 document's ``$SECRETS``/``$SECRET``; with ``dsl1``, a 1.0 document's
    ``$secrets``, and each authentication policy read from a secret (``basic:
    name``, ``{basic: {use: name}}``). Descriptions and metadata are skipped (and
    a 1.0 ``document`` header); every other string that mentions the secrets is
    read as an expression (``${ }`` or bare: conditions and SonataFlow's arguments
    are bare).
    """
    found = []
    read, tokens = _READ[dsl1], _TOKEN[dsl1]
    if dsl1 and isinstance(document, Mapping):
        document = {k: v for k, v in document.items() if k != "document"}
    for path, text in _texts(document, ()):
        if read.search(text) is not None and (reason := _refusal(text, tokens)) is not None:
            found.append(SecretRead(path, text, reason))
    return found + (_policies_from_secrets(document, ()) if dsl1 else [])


def _policies_from_secrets(value: Any, path: tuple[str | int, ...]) -> list[SecretRead]:
    """The 1.0 authentication policies whose properties are read from a secret."""
    found = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            here = (*path, str(key))
            if key in _SKIPPED:
                continue
            if key == "authentications" and path[-1:] == ("use",) and isinstance(item, Mapping):
                for name, policy in item.items():
                    found += _policy_reads(policy, (*here, str(name)))
            elif key == "authentication":
                found += _policy_reads(item, here)
            else:
                found += _policies_from_secrets(item, here)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found += _policies_from_secrets(item, (*path, index))
    return found


def _policy_reads(policy: Any, path: tuple[str | int, ...]) -> list[SecretRead]:
    if not isinstance(policy, Mapping) or set(policy) == {"use"}:  # a named policy's reference
        return []
    found = []
    for scheme, body in policy.items():
        if isinstance(body, str) or (isinstance(body, Mapping) and set(body) == {"use"}):
            name = body if isinstance(body, str) else body["use"]
            found.append(SecretRead((*path, str(scheme)), str(name), _POLICY))
    return found


def _texts(value: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if key not in _SKIPPED:
                yield from _texts(item, (*path, str(key)))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _texts(item, (*path, index))


def _refusal(text: str, tokens: re.Pattern[str]) -> str | None:
    """Why ``text`` cannot run on seals, or ``None`` when it only places secrets."""
    code = text.strip()
    if code.startswith("${") and code.endswith("}"):
        code = code[2:-1]
    flat = _flatten(code)
    if flat is None:
        return _PLACED
    at, previous = 0, ""
    while at < len(flat):
        match = tokens.match(flat, at)
        if match is None:
            return _PLACED
        kind = match.lastgroup or ""
        if (previous == "secret" and kind in ("path", "secret")) or (
            previous == "secret" and match.group().startswith("[")
        ):
            return _INTO
        if kind != "space":
            previous = kind
        at = match.end()
    return None


def _flatten(code: str) -> str | None:
    """``code`` with each string literal's text replaced by ``S`` and its interpolations
    kept as parenthesized code (``"a\\(x)b"`` -> ``S+(x)+S``); ``None`` if unbalanced."""
    out: list[str] = []
    depth: list[int] = []  # for each open interpolation, its parentheses still open
    i, n = 0, len(code)
    in_string = False
    while i < n:
        c = code[i]
        if in_string:
            if c == "\\" and i + 1 < n and code[i + 1] == "(":
                out.append("S+(")
                depth.append(0)
                in_string = False
                i += 2
                continue
            if c == "\\":
                i += 2
                continue
            if c == '"':
                out.append("S")
                in_string = False
            i += 1
            continue
        if c == '"':
            in_string = True
        elif c == "(" and depth:
            depth[-1] += 1
            out.append(c)
        elif c == ")" and depth and depth[-1] == 0:
            depth.pop()
            out.append(")+")
            in_string = True
        else:
            if c == ")" and depth:
                depth[-1] -= 1
            out.append(c)
        i += 1
    if in_string or depth:
        return None
    return "".join(out)
