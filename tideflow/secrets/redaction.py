"""Redaction: secret values replaced by ``***`` wherever a workflow's values leave it.

A workflow that received secrets (``$SECRETS``) could put them where others
read them: its output, its state data, its timeline, the errors its
expressions raise, the events it produces and the lifecycle events about it.
The hosts pass every such value through the workflow's :class:`Redactor`
before it is stored or published; only function calls (where the secret is
meant to go) see the real values.

What is caught, for every string of a secret's value (a secret that is an
object or array contributes each string and number in it, and so does one
whose text is a JSON object or array):

- the value itself, anywhere inside any string (a key or a value, however
  deep: ``{x: $SECRETS}``, ``"Bearer " + $SECRETS.token``, an error message
  quoting it), once it has at least :data:`MIN_SUBSTRING` characters; a
  shorter value is replaced only where a whole string equals it;
- the same text JSON-escaped (``tojson`` of it), percent-encoded (``@uri``)
  and in base64 (``@base64``, standard and URL-safe alphabets);
- a number equal to a numeric secret.

What is not: any other transformation (``ascii_downcase``, a substring,
``explode``, the value hashed, split or interleaved with other text before
encoding). Redaction is a safety net for mistakes, not a boundary against a
workflow author who wants to leak a secret: the boundary is the grant
(:mod:`tideflow.secrets.grants`). Pure code: no I/O.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final
from urllib.parse import quote

__all__ = ["MASK", "MIN_SUBSTRING", "NO_REDACTION", "Redactor"]

MASK: Final = "***"
"""What a secret is replaced by."""
MIN_SUBSTRING: Final = 4
"""Secret texts this long or longer are redacted inside other strings too."""


class Redactor:
    """Replaces the values of some secrets by :data:`MASK` in JSON values and text.

    Args:
        secrets: ``{name: value}`` as a workflow receives them (``$SECRETS``).
    """

    __slots__ = ("_any", "_numbers", "_pattern", "_whole")

    def __init__(self, secrets: Mapping[str, Any]) -> None:
        texts: set[str] = set()
        numbers: set[float] = set()
        for leaf in _leaves(list(secrets.values())):
            if isinstance(leaf, bool):
                continue
            if isinstance(leaf, int | float):
                numbers.add(leaf)
                texts.add(json.dumps(leaf))
            else:
                texts.update(_encodings(leaf))
        long = sorted((t for t in texts if len(t) >= MIN_SUBSTRING), key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, long))) if long else None
        self._whole = frozenset(t for t in texts if t and len(t) < MIN_SUBSTRING)
        self._numbers = frozenset(numbers)
        self._any = self._pattern is not None or bool(self._whole) or bool(self._numbers)

    def __bool__(self) -> bool:
        """Whether there is anything to redact."""
        return self._any

    def text(self, text: str) -> str:
        """``text`` with every secret in it replaced by :data:`MASK`."""
        if text in self._whole:
            return MASK
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)

    def value(self, value: Any) -> Any:
        """A JSON value with every secret in its strings (keys too) and numbers replaced."""
        if not self._any:  # the usual case (a run without secrets): every step asks
            return value
        return self._walk(value)

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.text(str(k)): self._walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._walk(item) for item in value]
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and value in self._numbers
        ):
            return MASK
        return value


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, str) and value[:1] in ("{", "["):
        yield value
        yield from _leaves(_json_or_none(value))  # a policy kept as JSON text: its parts too
    elif value is not None:
        yield value if isinstance(value, int | float) else str(value)


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _encodings(text: str) -> set[str]:
    """The text and the encodings of it that jq makes in one step."""
    raw = text.encode()
    out = {
        text,
        json.dumps(text)[1:-1],
        json.dumps(text, ensure_ascii=False)[1:-1],
        quote(text, safe=""),
    }
    if len(text) >= MIN_SUBSTRING:
        out.update(_base64_forms(raw))
    return {t for t in out if t}


def _base64_forms(raw: bytes) -> set[str]:
    """Base64 of ``raw`` in both alphabets, without the padding (which depends on what follows)."""
    encoded = base64.b64encode(raw).decode().rstrip("=")
    # the last character mixes in bits of whatever follows the secret: leave it out
    # unless the length makes it complete
    if len(raw) % 3:
        encoded = encoded[:-1]
    return {encoded, encoded.replace("+", "-").replace("/", "_")}


NO_REDACTION: Final = Redactor({})
"""A redactor with nothing to redact (a workflow without secrets)."""
