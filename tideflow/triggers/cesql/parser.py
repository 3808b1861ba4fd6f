"""Parser for CloudEvents SQL: tokens to an immutable syntax tree.

Precedence, tightest first (spec 3.6): function calls and literals, unary
``NOT`` and ``-``, ``LIKE``, ``EXISTS``, ``IN``, ``* / %``, ``+ -``,
comparisons, then ``AND OR XOR``. Operators of equal precedence group left
to right, as section 3.6 says, so ``a OR b AND c`` is ``(a OR b) AND c``:
write parentheses when mixing logical operators.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tideflow.errors import CesqlParseError
from tideflow.triggers.cesql.lexer import Tok, Token, tokenize
from tideflow.triggers.cesql.values import INT32_MAX, INT32_MIN, Value


@dataclass(frozen=True, slots=True)
class Literal:
    """A literal value."""

    value: Value
    column: int


@dataclass(frozen=True, slots=True)
class Attribute:
    """A reference to a context attribute or extension (lower-cased name)."""

    name: str
    column: int


@dataclass(frozen=True, slots=True)
class Exists:
    """``EXISTS name``."""

    name: str
    column: int


@dataclass(frozen=True, slots=True)
class Unary:
    """``NOT x`` or ``-x``."""

    op: str
    operand: Node
    column: int


@dataclass(frozen=True, slots=True)
class Binary:
    """A binary operator: logical, comparison or arithmetic (``op`` upper-cased)."""

    op: str
    left: Node
    right: Node
    column: int


@dataclass(frozen=True, slots=True)
class Like:
    """``x [NOT] LIKE 'pattern'``."""

    operand: Node
    pattern: str
    negated: bool
    column: int


@dataclass(frozen=True, slots=True)
class In:
    """``x [NOT] IN (y1, y2, ...)``."""

    operand: Node
    items: tuple[Node, ...]
    negated: bool
    column: int


@dataclass(frozen=True, slots=True)
class Call:
    """A function invocation (``name`` upper-cased)."""

    name: str
    args: tuple[Node, ...]
    column: int


Node = Literal | Attribute | Exists | Unary | Binary | Like | In | Call

_LOGIC, _COMPARE, _ADD, _MUL, _IN, _LIKE, _PREFIX = 1, 2, 3, 4, 5, 6, 7
_BINARY_POWER = {
    "AND": _LOGIC,
    "OR": _LOGIC,
    "XOR": _LOGIC,
    "=": _COMPARE,
    "!=": _COMPARE,
    "<>": _COMPARE,
    "<": _COMPARE,
    "<=": _COMPARE,
    ">": _COMPARE,
    ">=": _COMPARE,
    "+": _ADD,
    "-": _ADD,
    "*": _MUL,
    "/": _MUL,
    "%": _MUL,
}
MAX_DEPTH = 200
"""Deepest syntax tree accepted (keeps compilation and evaluation off Python's recursion limit)."""

_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9]+")
_FUNCTION_NAME = re.compile(r"[A-Za-z][A-Za-z_]*")


def parse(source: str) -> Node:
    """Parse a CESQL expression.

    Raises:
        CesqlParseError: With the 1-based column of the problem.
    """
    tree = _Parser(source).parse()
    if depth(tree) > MAX_DEPTH:
        raise CesqlParseError(
            f"the expression is nested more than {MAX_DEPTH} levels deep",
            expression=source,
            column=1,
        )
    return tree


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-expressions of a node."""
    if isinstance(node, Unary | Like):
        return (node.operand,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, In):
        return (node.operand, *node.items)
    if isinstance(node, Call):
        return node.args
    return ()


def depth(node: Node) -> int:
    """Height of the tree under ``node`` (a leaf is 1), computed without recursion."""
    deepest = 0
    stack = [(node, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children(item))
    return deepest


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.pos = 0
        self.nesting = 0

    # -- helpers -----------------------------------------------------------

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def error(self, reason: str, token: Token | None = None) -> CesqlParseError:
        column = (token or self.peek()).column
        return CesqlParseError(reason, expression=self.source, column=column)

    def expect(self, kind: Tok, what: str) -> Token:
        token = self.peek()
        if token.kind is not kind:
            raise self.error(f"expected {what} but found {token.describe()}")
        return self.advance()

    def is_keyword(self, token: Token, word: str) -> bool:
        return token.kind is Tok.KEYWORD and token.text == word

    # -- grammar -----------------------------------------------------------

    def parse(self) -> Node:
        if self.peek().kind is Tok.END:
            raise self.error("the expression is empty")
        node = self.expression(0)
        token = self.peek()
        if token.kind is not Tok.END:
            raise self.error(f"unexpected {token.describe()} after a complete expression")
        return node

    def expression(self, min_power: int) -> Node:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise self.error(f"the expression is nested more than {MAX_DEPTH} levels deep")
        try:
            return self.operators(self.prefix(), min_power)
        finally:
            self.nesting -= 1

    def operators(self, left: Node, min_power: int) -> Node:
        while True:
            token = self.peek()
            if token.kind is Tok.OP or token.kind is Tok.KEYWORD:
                op = token.text
            else:
                return left
            if op == "NOT" or op in ("LIKE", "IN"):
                postfix = self.postfix(left, min_power)
                if postfix is None:
                    return left
                left = postfix
                continue
            power = _BINARY_POWER.get(op)
            if power is None:
                raise self.error(f"unexpected {token.describe()} after a complete expression")
            if power <= min_power:
                return left
            self.advance()
            right = self.expression(power)
            left = Binary(op, left, right, token.column)

    def postfix(self, left: Node, min_power: int) -> Node | None:
        start = self.peek()
        negated = self.is_keyword(start, "NOT")
        op_token = self.peek(1) if negated else start
        if op_token.kind is not Tok.KEYWORD or op_token.text not in ("LIKE", "IN"):
            raise self.error("expected LIKE or IN after NOT", op_token)
        power = _LIKE if op_token.text == "LIKE" else _IN
        if power <= min_power:
            return None
        self.pos += 2 if negated else 1
        if op_token.text == "LIKE":
            pattern = self.peek()
            if pattern.kind is not Tok.STRING:
                raise self.error(
                    f"the pattern of LIKE must be a string literal, found {pattern.describe()}"
                )
            self.advance()
            return Like(left, pattern.text, negated, op_token.column)
        return In(left, self.arguments("IN", allow_empty=False), negated, op_token.column)

    def prefix(self) -> Node:
        token = self.advance()
        kind, text = token.kind, token.text
        if kind is Tok.KEYWORD:
            return self.keyword_prefix(token)
        if kind is Tok.OP and text in ("-", "+"):
            if self.peek().kind is Tok.INT:
                return self.integer(self.advance(), negative=text == "-", column=token.column)
            if text == "+":
                raise self.error("'+' must be followed by an integer literal")
            return Unary("-", self.expression(_PREFIX), token.column)
        if kind is Tok.INT:
            return self.integer(token, negative=False, column=token.column)
        if kind is Tok.STRING:
            return Literal(text, token.column)
        if kind is Tok.WORD:
            return self.word(token)
        if kind is Tok.LPAREN:
            inner = self.expression(0)
            self.expect(Tok.RPAREN, "')'")
            return inner
        raise self.error(f"expected an expression but found {token.describe()}", token)

    def keyword_prefix(self, token: Token) -> Node:
        if token.text in ("TRUE", "FALSE"):
            return Literal(token.text == "TRUE", token.column)
        if token.text == "NOT":
            return Unary("NOT", self.expression(_PREFIX), token.column)
        if token.text == "EXISTS":
            name = self.peek()
            if name.kind is not Tok.WORD or not _ATTRIBUTE_NAME.fullmatch(name.text):
                raise self.error(
                    f"expected an attribute name after EXISTS, found {name.describe()}"
                )
            self.advance()
            return Exists(name.text.lower(), token.column)
        raise self.error(f"expected an expression but found {token.describe()}", token)

    def integer(self, token: Token, *, negative: bool, column: int) -> Literal:
        number = -int(token.text) if negative else int(token.text)
        if not INT32_MIN <= number <= INT32_MAX:
            raise self.error(f"integer literal {number} is outside the 32-bit range", token)
        return Literal(number, column)

    def word(self, token: Token) -> Node:
        if self.peek().kind is Tok.LPAREN:
            if not _FUNCTION_NAME.fullmatch(token.text):
                raise self.error(f"invalid function name {token.text!r}", token)
            args = self.arguments(token.text, allow_empty=True)
            return Call(token.text.upper(), args, token.column)
        if not _ATTRIBUTE_NAME.fullmatch(token.text):
            raise self.error(
                f"invalid attribute name {token.text!r} (letters and digits only)", token
            )
        return Attribute(token.text.lower(), token.column)

    def arguments(self, owner: str, *, allow_empty: bool) -> tuple[Node, ...]:
        self.expect(Tok.LPAREN, f"'(' after {owner}")
        items: list[Node] = []
        if self.peek().kind is Tok.RPAREN and allow_empty:
            self.advance()
            return ()
        while True:
            items.append(self.expression(0))
            token = self.advance()
            if token.kind is Tok.RPAREN:
                return tuple(items)
            if token.kind is not Tok.COMMA:
                raise self.error(f"expected ',' or ')' but found {token.describe()}", token)
