"""Tokenizer for CloudEvents SQL expressions.

Keywords are case-insensitive. A run of letters, digits and underscores is a
keyword, an integer literal (digits only), an attribute identifier (letters
and digits, folded to lower case: attribute names are lower case) or, when it
contains an underscore, a function name. String literals are delimited by
``'`` or ``"``; inside them ``\\'`` (resp. ``\\"``) and a doubled delimiter
stand for the delimiter, and any other backslash is kept as is (so ``LIKE``
patterns can carry ``\\%`` and ``\\_``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from tideflow.errors import CesqlParseError


class Tok(Enum):
    """Token kinds."""

    INT = "integer"
    STRING = "string"
    WORD = "identifier"
    KEYWORD = "keyword"
    OP = "operator"
    LPAREN = "'('"
    RPAREN = "')'"
    COMMA = "','"
    END = "end of expression"


KEYWORDS = frozenset({"AND", "OR", "XOR", "NOT", "LIKE", "EXISTS", "IN", "TRUE", "FALSE"})

# Longest first, so "<=" wins over "<".
_OPERATORS = ("!=", "<>", "<=", ">=", "=", "<", ">", "+", "-", "*", "/", "%")
_PUNCT = {"(": Tok.LPAREN, ")": Tok.RPAREN, ",": Tok.COMMA}
_SPACE = " \t\r\n"


@dataclass(frozen=True, slots=True)
class Token:
    """One token.

    Attributes:
        kind: The token kind.
        text: Upper-cased keyword, operator symbol, word as written, or the
            decoded content of a string literal.
        column: 1-based column of the token's first character.
    """

    kind: Tok
    text: str
    column: int

    def describe(self) -> str:
        """How the token reads in an error message."""
        if self.kind is Tok.END:
            return "end of expression"
        if self.kind is Tok.STRING:
            return f"string {self.text!r}"
        return repr(self.text)


def tokenize(source: str) -> list[Token]:
    """Split an expression into tokens, ending with a :data:`Tok.END` token.

    Raises:
        CesqlParseError: On an unterminated string or an unexpected character.
    """
    tokens: list[Token] = []
    pos, length = 0, len(source)
    while pos < length:
        char = source[pos]
        if char in _SPACE:
            pos += 1
        elif char.isascii() and (char.isalnum() or char == "_"):
            pos = _word(source, pos, tokens)
        elif char in "'\"":
            pos = _string(source, pos, tokens)
        elif char in _PUNCT:
            tokens.append(Token(_PUNCT[char], char, pos + 1))
            pos += 1
        else:
            pos = _operator(source, pos, tokens)
    tokens.append(Token(Tok.END, "", length + 1))
    return tokens


def _word(source: str, start: int, tokens: list[Token]) -> int:
    end = start
    while (
        end < len(source)
        and source[end].isascii()
        and (source[end].isalnum() or source[end] == "_")
    ):
        end += 1
    text = source[start:end]
    upper = text.upper()
    if upper in KEYWORDS:
        tokens.append(Token(Tok.KEYWORD, upper, start + 1))
    elif text.isdigit():
        tokens.append(Token(Tok.INT, text, start + 1))
    else:
        tokens.append(Token(Tok.WORD, text, start + 1))
    return end


def _string(source: str, start: int, tokens: list[Token]) -> int:
    quote = source[start]
    out: list[str] = []
    pos = start + 1
    while pos < len(source):
        char = source[pos]
        if char == "\\" and pos + 1 < len(source):
            nxt = source[pos + 1]
            out.append(nxt if nxt == quote else char + nxt)
            pos += 2
        elif char == quote:
            if source[pos + 1 : pos + 2] == quote:
                out.append(quote)
                pos += 2
                continue
            tokens.append(Token(Tok.STRING, "".join(out), start + 1))
            return pos + 1
        else:
            out.append(char)
            pos += 1
    raise CesqlParseError(
        f"unterminated string literal (missing closing {quote})",
        expression=source,
        column=start + 1,
    )


def _operator(source: str, start: int, tokens: list[Token]) -> int:
    for symbol in _OPERATORS:
        if source.startswith(symbol, start):
            tokens.append(Token(Tok.OP, symbol, start + 1))
            return start + len(symbol)
    raise CesqlParseError(
        f"unexpected character {source[start]!r}", expression=source, column=start + 1
    )
