"""Secret grants: which secrets the operator lets each workflow (or sink) receive.

A workflow names the secrets it uses (0.8 ``secrets``, 1.0 ``use.secrets``,
SonataFlow's ``$SECRET.name``), but on a server it receives a secret only
where a grant covers it. A grant is ``PATTERN=NAME,NAME``:

- ``PATTERN`` matches the *subject* that uses the secrets: a workflow id
  (``orders``, ``orders.*``), or ``sink:<host>`` for the credentials of a
  subscription's sink at that host (``sink:hooks.example``);
- each ``NAME`` is a secret's name.

In both, ``*`` matches any run of characters (``*=*`` grants every secret to
everything: what ``tideflow run`` does for its local user). Grants come from
``--grant-secret`` / ``TIDEFLOW_SECRET_GRANTS`` (fixed for the server's life)
and from the admin API (``/secrets/grants``, stored in the database). Pure
code: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from tideflow.errors import InvalidArgument

__all__ = ["ALL", "Grant", "make_grant", "parse_grant", "parse_grants", "refused"]

_PATTERN: Final = re.compile(r"[A-Za-z0-9._:*\[\]-]{1,200}")
_NAME: Final = re.compile(r"[A-Za-z0-9_*][A-Za-z0-9_.*-]{0,127}")


@dataclass(frozen=True, slots=True)
class Grant:
    """Subjects matching ``pattern`` may receive the secrets ``names`` match.

    Attributes:
        pattern: A workflow id or ``sink:<host>``; ``*`` matches any run of characters.
        names: Secret names; ``*`` matches any run of characters.
    """

    pattern: str
    names: tuple[str, ...]

    def covers(self, subject: str, name: str) -> bool:
        """Whether this grant lets ``subject`` receive secret ``name``."""
        return _matches(self.pattern, subject) and any(_matches(n, name) for n in self.names)

    def to_json(self) -> dict[str, Any]:
        """The API form: ``{pattern, secrets}``."""
        return {"pattern": self.pattern, "secrets": list(self.names)}

    def __str__(self) -> str:
        return f"{self.pattern}={','.join(self.names)}"


ALL: Final = Grant("*", ("*",))
"""Every secret to every subject: the local user of ``tideflow run`` is the operator."""


def make_grant(pattern: Any, names: Any) -> Grant:
    """A checked grant.

    Raises:
        InvalidArgument: The pattern or a name is malformed, or there is no name.
    """
    if not isinstance(pattern, str) or _PATTERN.fullmatch(pattern) is None:
        raise InvalidArgument(
            f"invalid grant pattern {pattern!r}: a workflow id or sink:<host>, made of "
            "letters, digits, '.', '_', '-', ':' and '*'",
            argument="pattern",
        )
    if isinstance(names, str) or not isinstance(names, Sequence) or not names:
        raise InvalidArgument("a grant needs a list of secret names", argument="secrets")
    for name in names:
        if not isinstance(name, str) or _NAME.fullmatch(name) is None:
            raise InvalidArgument(
                f"invalid secret name {name!r}: letters, digits, '_', '.', '-' and '*'",
                argument="secrets",
            )
    return Grant(pattern, tuple(dict.fromkeys(names)))


def parse_grant(text: str) -> Grant:
    """``PATTERN=NAME,NAME`` as a grant.

    Raises:
        InvalidArgument: It is not of that form.
    """
    pattern, sep, names = text.strip().partition("=")
    if not sep:
        raise InvalidArgument(
            f"invalid secret grant {text!r}: write PATTERN=NAME,NAME (e.g. 'orders.*=API_KEY')",
            argument="grant",
        )
    return make_grant(pattern.strip(), [n.strip() for n in names.split(",") if n.strip()])


def parse_grants(texts: Iterable[str]) -> tuple[Grant, ...]:
    """Grants from flags, or from ``TIDEFLOW_SECRET_GRANTS`` split at ``;`` and new lines."""
    parts = (part for text in texts for part in re.split(r"[;\n]", text))
    return tuple(parse_grant(part) for part in parts if part.strip())


def refused(grants: Iterable[Grant], subject: str, names: Iterable[str]) -> list[str]:
    """The names among ``names`` that no grant lets ``subject`` receive, in order."""
    held = tuple(grants)
    return [name for name in dict.fromkeys(names) if not any(g.covers(subject, name) for g in held)]


def _matches(pattern: str, text: str) -> bool:
    return pattern == text or ("*" in pattern and _matcher(pattern).fullmatch(text) is not None)


@lru_cache(maxsize=1024)
def _matcher(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else re.escape(c) for c in pattern))
