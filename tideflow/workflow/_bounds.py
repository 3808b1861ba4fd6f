"""Which jq expressions can run away, decided once at compile time (pure).

The ``jq`` package is a C extension: an evaluation cannot be interrupted from
Python, and a jq program that recurses without end aborts the whole process
when memory runs out. So every expression is classified when it is compiled:

- **bounded** expressions are evaluated in-process (the fast path). They use
  only paths, literals, object and array construction, ``+ - / %``,
  comparisons, ``and``/``or``/``not``, ``//``, ``if``, ``try``, ``?``, string
  interpolation, formats (``@base64`` ...) and builtins from an allow-list
  whose cost grows at most like ``n log n`` with their input; at most two
  iterations (``.[]``, ``..``, ``map``, ``sort_by`` ...) and a bounded number
  of references to the data. Such an expression cannot loop, and its work is
  a low-degree polynomial of the size of its input, which the value limits
  bound.
- **everything else** -- ``def``, ``reduce``, ``foreach``, ``while``,
  ``until``, ``repeat``, ``range``, ``limit``, ``recurse``, ``label``, ``as``
  bindings, assignments (``.[1e9] = 1`` allocates), ``*`` unless one side is
  a number literal of at most ``MAX_GROWTH`` (``"x" * 1e9``; ``.a * 2`` counts
  as two copies),
  ``-`` between two non-literals (array difference is quadratic),
  ``contains``/``indices`` and friends (quadratic), regular expressions
  (catastrophic backtracking), unknown names, anything this scanner does not
  understand -- is evaluated in a worker process under the time and memory
  budget (:mod:`tideflow.expression_budget`).

Misclassifying a bounded expression as unbounded costs only speed, never
correctness: both paths evaluate with the same jq.
"""

from __future__ import annotations

import math
import re

__all__ = ["MAX_GROWTH", "MAX_ITERATIONS", "is_bounded"]

MAX_ITERATIONS = 1
"""Iterations an in-process expression may contain (``.[]``, ``..``, ``map`` ...).

Two would allow a cartesian product (``{a: .[], b: .[]}``): n squared outputs.
"""

MAX_GROWTH = 64
"""How many times its input an in-process expression may copy, estimated as the
product over its ``|``-separated parts of the references to the data in each
(``[., .] | [., .]`` copies its input 4 times). jq shares the copies, but
turning its output into Python values does not."""


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_SAFE_CALLS = _names(
    """
    null true false not empty error select length utf8bytelength keys keys_unsorted has in
    startswith endswith ltrimstr rtrimstr trim ltrim rtrim explode
    ascii_downcase ascii_upcase tostring tonumber tojson type reverse sort unique
    min max add any all flatten floor ceil round sqrt fabs abs pow log log10 log2 exp exp10
    exp2 join split getpath del delpaths to_entries from_entries
    objects arrays booleans numbers strings nulls iterables scalars values first last nth
    isempty isinfinite isnan isnormal infinite nan now mktime gmtime localtime strftime
    strflocaltime strptime todate fromdate date todateiso8601 fromdateiso8601 dateadd
    datesub IN toarray significand trunc
    """
)
# Not in the list on purpose: contains, inside, index, rindex, indices (n times m on
# arrays and strings), fromjson (builds a value of any depth), implode (code points).
# Builtins that iterate over their input (counted against MAX_ITERATIONS).
_ITERATING_CALLS = _names(
    "map map_values with_entries sort_by group_by unique_by min_by max_by paths leaf_paths"
)
_KEYWORDS = _names("if then elif else end and or try catch")

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
    | (?P<field>\.[A-Za-z_][A-Za-z0-9_]*)
    | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<var>\$_*[A-Za-z_][A-Za-z0-9_]*)
    | (?P<format>@[A-Za-z0-9_]+)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*)
    | (?P<op>\?//|//=|\|=|\+=|-=|\*=|/=|%=|==|!=|<=|>=|//|\.\.|[.\[\]{}()|,:;=<>+\-*/%?])
    """,
    re.VERBOSE,
)
_ASSIGN = frozenset({"=", "|=", "+=", "-=", "*=", "/=", "%=", "//=", "?//", "*"})
# Tokens after which `[` indexes or iterates (rather than opening an array literal).
_TERM_END = frozenset({"]", ")", "}", "?", ".", "<str>", "<field>"})
# Tokens after which `.` or a field continues a path instead of starting one.
_PATH_GOES_ON = frozenset({"]", ")", "?", ".", "<str>", "<field>"})
_OPENERS = frozenset("([{")
_CLOSERS = frozenset(")]}")


def _scan(text: str, numbers: dict[int, float] | None = None) -> list[str] | None:
    """jq tokens; strings become ``<str>`` with their interpolations inlined as ``( ... )``.

    Fields become ``<field>``, numbers ``<number>`` (their values go to ``numbers``, by
    token index), formats ``<format>``; names, ``$NAME`` and operators stay as written.
    None when the text is not understood.
    """
    tokens: list[str] = []
    closes: list[int] = []  # for each open interpolation, the depth its `)` returns to
    depth = 0
    pos = 0
    while pos < len(text):
        resume = text[pos] == '"' or (text[pos] == ")" and closes and closes[-1] == depth - 1)
        if resume:  # a string starts, or an interpolation ends and its string goes on
            if text[pos] == ")":
                closes.pop()
                depth -= 1
                tokens.append(")")
            else:
                tokens.append("<str>")
            end = _string_end(text, pos + 1)
            if end is None:
                return None
            pos, opened = end
            if opened:
                tokens.append("(")
                closes.append(depth)
                depth += 1
            continue
        match = _TOKEN.match(text, pos)
        if match is None:
            return None
        pos = match.end()
        kind = match.lastgroup or ""
        if kind == "space":
            continue
        token = match.group()
        if kind in ("op", "name", "var"):
            depth += token in _OPENERS
            depth -= token in _CLOSERS
            tokens.append(token)
        else:
            if kind == "number" and numbers is not None:
                numbers[len(tokens)] = float(token)
            tokens.append(f"<{kind}>")
    return None if closes else tokens


def _string_end(text: str, pos: int) -> tuple[int, bool] | None:
    """Scan string content from ``pos``: (position after it, whether ``\\(`` opened)."""
    while pos < len(text):
        char = text[pos]
        if char == '"':
            return pos + 1, False
        if char == "\\":
            if text[pos + 1 : pos + 2] == "(":
                return pos + 2, True
            pos += 2
            continue
        pos += 1
    return None


def is_bounded(body: str) -> bool:
    """Whether a jq expression can safely be evaluated in-process (see the module doc).

    Args:
        body: The expression without its ``${ }`` wrapper.
    """
    numbers: dict[int, float] = {}
    tokens = _scan(body, numbers)
    if tokens is None:
        return False
    count = _Count(numbers)
    braces: list[str] = []
    previous = ""
    for index, token in enumerate(tokens):
        # (a name right after `{` or `,` in an object is a key, not a call)
        key = braces[-1:] == ["{"] and previous in ("{", ",")
        if not key and not count.add(tokens, index, previous):
            return False
        if token in _OPENERS:
            braces.append(token)
        elif token in _CLOSERS and braces:
            braces.pop()
        previous = token
    return count.iterations <= MAX_ITERATIONS and count.growth() <= MAX_GROWTH


class _Count:
    """Iterations, and references to the data per ``|``-separated part."""

    def __init__(self, numbers: dict[int, float]) -> None:
        self.numbers = numbers
        self.iterations = 0
        self.references = 0
        self.done = 1  # the growth of the parts before the current one

    def growth(self) -> int:
        return self.done * max(self.references, 1)

    def add(self, tokens: list[str], index: int, previous: str) -> bool:
        """Count ``tokens[index]``; False when it makes the expression unbounded."""
        token = tokens[index]
        if token == "*":
            return self._multiply(tokens, index, previous)
        if token in _ASSIGN:
            return False
        if token == "|":
            self.done, self.references = self.growth(), 0
        elif token == "-" and not _numeric_minus(tokens, index, previous):
            return False  # array difference costs n times m
        elif token == "[" and tokens[index + 1 : index + 2] == ["]"] and _ends_term(previous):
            self.iterations += 1
        elif token == "..":
            self.iterations += 1
            self.references += 1
        elif token.startswith("$"):
            if self.iterations or token == "$__d":  # n copies of a variable; the prelude's own
                return False
            self.references += 1
        elif token in (".", "<field>"):
            self.references += previous not in _PATH_GOES_ON and not previous.startswith("$")
        elif _is_name(token):
            if not _safe_call(tokens, index):
                return False
            self.iterations += token in _ITERATING_CALLS
        return True

    def _multiply(self, tokens: list[str], index: int, previous: str) -> bool:
        """``"x" * n`` repeats a string n times: bounded by a small number literal n."""
        factor = _small_factor(tokens, index, previous, self.numbers)
        if factor is None:
            return False
        self.done *= factor
        return True


def _safe_call(tokens: list[str], index: int) -> bool:
    token = tokens[index]
    if token == "split":  # split/2 takes a regular expression
        return _call_arguments(tokens, index) <= 1
    return token in _SAFE_CALLS or token in _KEYWORDS or token in _ITERATING_CALLS


def _small_factor(
    tokens: list[str], index: int, previous: str, numbers: dict[int, float]
) -> int | None:
    """How many times ``*`` at ``tokens[index]`` may copy its other operand: the number
    literal on one side (at most ``MAX_GROWTH``); None without one (``.a * .b``)."""
    sides = [index - 1] if previous == "<number>" else []
    if tokens[index + 1 : index + 2] == ["<number>"]:
        sides.append(index + 1)
    if not sides:
        return None
    factor = min(numbers[side] for side in sides)
    return max(1, math.ceil(factor)) if factor <= MAX_GROWTH else None


def _numeric_minus(tokens: list[str], index: int, previous: str) -> bool:
    """A unary minus, or a subtraction with a number literal on one side."""
    binary = previous == "<number>" or _ends_term(previous)
    following = tokens[index + 1] if index + 1 < len(tokens) else ""
    return not binary or previous == "<number>" or following == "<number>"


def _is_name(token: str) -> bool:
    return token[:1].isalpha() or token[:1] == "_"


def _ends_term(token: str) -> bool:
    """Whether ``[`` after ``token`` indexes (``.a[]``) rather than opens a literal (``// []``)."""
    return token in _TERM_END or (_is_name(token) and token not in _KEYWORDS)


def _call_arguments(tokens: list[str], index: int) -> int:
    """How many ``;``-separated arguments the call at ``tokens[index]`` has."""
    if index + 1 >= len(tokens) or tokens[index + 1] != "(":
        return 0
    depth = 0
    count = 1
    for token in tokens[index + 1 :]:
        if token in ("(", "[", "{"):
            depth += 1
        elif token in (")", "]", "}"):
            depth -= 1
            if depth == 0:
                return count
        elif token == ";" and depth == 1:
            count += 1
    return count
