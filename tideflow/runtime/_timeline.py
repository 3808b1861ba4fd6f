"""Timeline rows as stored: one row per instance and journal commit.

An instance writes two to four timeline entries between two commits (an
action completed, its state exited, the next state entered, its action
started). Each stored row costs PostgreSQL a heap tuple, a primary-key
entry and a sequence value, and in ``seq3`` (``bench/runtime.py``) the twelve
rows per instance were the largest part of the database's work. So the
journal writer *folds* the entries one instance queued for one commit into
one row of kind :data:`FOLDED` whose ``detail`` is the JSON array of the
entries, each ``[kind, key, state, at, detail]`` (``at`` in ISO 8601). A
commit with a single entry for an instance stores it as a plain row, as
before. Readers expand folded rows (:func:`expand`), so the timeline API
shows the same entries in the same order; the SQL that counts an instance's
interpreter steps (``count_timeline``) looks inside folded rows.

Pure code: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = ["FOLDED", "Row", "expand", "fold"]

FOLDED = "entries"
"""The ``kind`` of a row holding several entries."""

Row = tuple[str, int, str, str, str | None, str, datetime]
"""A queued timeline row: instance, run, kind, key, state, detail (JSON text), at."""


def fold(rows: Sequence[Row]) -> list[Row]:
    """One row per instance and run of ``rows`` (entries in queued order).

    Folded rows go where their instance's first entry was, so the rows of
    different instances keep their relative order too.
    """
    groups: dict[tuple[str, int], list[Row]] = {}
    for row in rows:
        groups.setdefault((row[0], row[1]), []).append(row)
    if len(groups) == len(rows):
        return list(rows)
    out: list[Row] = []
    for (instance_id, run_no), group in groups.items():
        if len(group) == 1:
            out.append(group[0])
            continue
        first = group[0]
        detail = "[" + ",".join(_entry(r) for r in group) + "]"
        out.append((instance_id, run_no, FOLDED, first[3], first[4], detail, first[6]))
    return out


def _entry(row: Row) -> str:
    _, _, kind, key, state, detail, at = row
    if at.tzinfo is None:  # as PostgreSQL stores a naive timestamptz parameter: UTC
        at = at.replace(tzinfo=UTC)
    return f'[{json.dumps(kind)},{json.dumps(key)},{json.dumps(state)},"{at.isoformat()}",{detail}]'


def expand(row: Mapping[str, Any], detail: Any) -> list[dict[str, Any]]:
    """The entries of a stored row (``detail``: its decoded ``detail`` column).

    Each entry is ``{seq, run_no, kind, step_key, state, detail, at}``; the
    entries of a folded row share its ``seq``.
    """
    base = {"seq": row["seq"], "run_no": row["run_no"]}
    if row["kind"] != FOLDED:
        return [
            {
                **base,
                "kind": row["kind"],
                "step_key": row["step_key"],
                "state": row["state"],
                "detail": detail or {},
                "at": row["at"],
            }
        ]
    return [
        {
            **base,
            "kind": kind,
            "step_key": key,
            "state": state,
            "detail": inner or {},
            "at": datetime.fromisoformat(at),
        }
        for kind, key, state, at, inner in detail
    ]
