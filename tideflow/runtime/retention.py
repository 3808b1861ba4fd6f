"""History retention: how long ended instances are kept, per workflow (pure, no I/O).

The operator sets it, as the secret grants are set: ``tideflow serve --retention``
(repeatable) or ``TIDEFLOW_RETENTION`` (comma-separated), each entry either

- ``DURATION``: the server default, for workflows no pattern matches, or
- ``PATTERN=DURATION``: workflows whose id matches ``PATTERN`` (``*`` matches
  any run of characters, e.g. ``orders.*``).

The first matching pattern wins, and the first default; the flags come before the
environment variable's entries, so a flag overrides it.

``DURATION`` is an ISO 8601 duration (``P30D``, ``PT12H``) or ``forever``. Without
a default entry the default is :data:`DEFAULT_RETENTION`. A completed, failed or
cancelled instance whose end is older than its workflow's retention is deleted
with its journal and timeline (:class:`tideflow.runtime.history.HistoryPurger`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Final

from tideflow.errors import InvalidArgument
from tideflow.isotime import parse_duration

__all__ = ["DEFAULT_RETENTION", "FOREVER", "RetentionPolicy", "RetentionRule", "parse_retention"]

DEFAULT_RETENTION: Final = timedelta(days=30)
"""Kept this long when no ``--retention`` entry is a default."""
FOREVER: Final = "forever"
"""The duration that keeps instances for ever."""

_PATTERN: Final = re.compile(r"[A-Za-z0-9._:*-]{1,200}")
_SHORTEST: Final = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """Workflows whose id matches ``pattern`` keep ended instances for ``keep``.

    Attributes:
        pattern: A workflow id; ``*`` matches any run of characters.
        keep: How long after its end an instance is kept; ``None``: for ever.
    """

    pattern: str
    keep: timedelta | None

    def matches(self, workflow_id: str) -> bool:
        """Whether this rule is about ``workflow_id``."""
        return _regex(self.pattern).fullmatch(workflow_id) is not None

    def __str__(self) -> str:
        return f"{self.pattern}={_text(self.keep)}"


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """The per-workflow rules, in order, and the default.

    Attributes:
        rules: Checked in order; the first that matches a workflow's id applies.
        default: For workflows no rule matches; ``None``: for ever.
    """

    rules: tuple[RetentionRule, ...] = ()
    default: timedelta | None = DEFAULT_RETENTION

    def keep(self, workflow_id: str) -> timedelta | None:
        """How long ``workflow_id``'s ended instances are kept (``None``: for ever)."""
        for rule in self.rules:
            if rule.matches(workflow_id):
                return rule.keep
        return self.default

    def cutoffs(
        self, workflow_ids: Iterable[str], now: datetime
    ) -> tuple[list[str], list[datetime]]:
        """The workflows whose instances may be deleted, each with the end time
        before which its instances go (parallel lists, as the purge query takes them)."""
        ids: list[str] = []
        cutoffs: list[datetime] = []
        for workflow_id in workflow_ids:
            keep = self.keep(workflow_id)
            if keep is not None:
                ids.append(workflow_id)
                cutoffs.append(now - keep)
        return ids, cutoffs

    def describe(self) -> str:
        """The policy as the entries that would set it (for logs and docs)."""
        return ", ".join([*(str(r) for r in self.rules), _text(self.default)])


def parse_retention(entries: Sequence[str]) -> RetentionPolicy:
    """The policy of ``--retention`` / ``TIDEFLOW_RETENTION`` entries.

    An entry may itself be a comma-separated list (the environment variable's form).

    Raises:
        InvalidArgument: An entry is malformed (it is named).
    """
    rules: list[RetentionRule] = []
    default: timedelta | None = DEFAULT_RETENTION
    seen_default = False
    for entry in (part.strip() for text in entries for part in text.split(",")):
        if not entry:
            continue
        if "=" not in entry:
            keep = _duration(entry, entry)
            if not seen_default:
                default, seen_default = keep, True
            continue
        pattern, _, duration = entry.partition("=")
        pattern = pattern.strip()
        if _PATTERN.fullmatch(pattern) is None:
            raise InvalidArgument(
                f"retention {entry!r}: the pattern must be a workflow id made of letters, "
                "digits, '.', '_', '-', ':' and '*'",
                argument="retention",
            )
        rules.append(RetentionRule(pattern, _duration(duration.strip(), entry)))
    return RetentionPolicy(tuple(rules), default)


def _duration(text: str, entry: str) -> timedelta | None:
    if text.lower() == FOREVER:
        return None
    try:
        value = parse_duration(text)
    except ValueError:
        value = None
    if value is None or value < _SHORTEST:
        raise InvalidArgument(
            f"retention {entry!r}: the duration must be an ISO 8601 duration of at least "
            "a second (P30D, PT12H) or 'forever'",
            argument="retention",
        )
    return value


def _text(keep: timedelta | None) -> str:
    if keep is None:
        return FOREVER
    seconds = int(keep.total_seconds())
    if seconds % 86400 == 0:
        return f"P{seconds // 86400}D"
    if seconds % 3600 == 0:
        return f"PT{seconds // 3600}H"
    return f"PT{seconds}S"


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))
