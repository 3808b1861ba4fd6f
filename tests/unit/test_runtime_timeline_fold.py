"""Timeline rows folded per instance and commit, and expanded back (tideflow.runtime._timeline)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from tideflow.runtime._timeline import FOLDED, Row, expand, fold

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def _row(instance: str, kind: str, key: str, detail: dict[str, Any], ms: int, run: int = 1) -> Row:
    return (instance, run, kind, key, "A", json.dumps(detail), T0 + timedelta(milliseconds=ms))


def _stored(row: Row, seq: int) -> tuple[dict[str, Any], Any]:
    record = {"seq": seq, "run_no": row[1], "kind": row[2], "step_key": row[3], "state": row[4]}
    record["at"] = row[6]
    return record, json.loads(row[5])


def test_entries_of_one_instance_fold_into_one_row_and_expand_back_in_order() -> None:
    rows = [
        _row("a", "action.completed", "A/0/0", {"attempt": 1, "durationMs": 1.5}, 0),
        _row("b", "state.entered", "B/0", {}, 1),
        _row("a", "state.exited", "A/0", {}, 2),
        _row("a", "state.entered", "B/1", {"note": "é"}, 3),
    ]
    folded = fold(rows)
    assert [(r[0], r[2]) for r in folded] == [("a", FOLDED), ("b", "state.entered")]
    assert folded[1] == rows[1]
    entries = expand(*_stored(folded[0], 7))
    assert [(e["kind"], e["step_key"], e["detail"], e["at"]) for e in entries] == [
        ("action.completed", "A/0/0", {"attempt": 1, "durationMs": 1.5}, rows[0][6]),
        ("state.exited", "A/0", {}, rows[2][6]),
        ("state.entered", "B/1", {"note": "é"}, rows[3][6]),
    ]
    assert {e["seq"] for e in entries} == {7}


def test_rows_of_different_runs_stay_apart_and_single_rows_stay_plain() -> None:
    rows = [_row("a", "x.one", "k1", {}, 0, run=1), _row("a", "x.two", "k2", {}, 1, run=2)]
    assert fold(rows) == rows
    plain = expand(*_stored(rows[0], 3))
    assert plain == [
        {"seq": 3, "run_no": 1, "kind": "x.one", "step_key": "k1", "state": "A", "detail": {}}
        | {"at": rows[0][6]}
    ]


def test_a_naive_stamp_is_read_back_as_utc() -> None:
    naive = ("a", 1, "k.one", "k", None, "{}", datetime(2026, 1, 1, 12, 0))  # noqa: DTZ001
    folded = fold([naive, naive])
    entries = expand(*_stored(folded[0], 1))
    assert [e["at"] for e in entries] == [datetime(2026, 1, 1, 12, 0, tzinfo=UTC)] * 2
