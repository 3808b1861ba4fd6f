"""The newest events this process committed per bus (tideflow.eventstore.tail)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tideflow.eventstore.tail import Tails

AT = datetime(2026, 1, 1, tzinfo=UTC)


def records(bus_id: int, first: int, count: int, text: str = "{}") -> list[tuple[Any, ...]]:
    return [(bus_id, n, "/s", str(n), n, AT, text, None) for n in range(first, first + count)]


def offsets(rows: Any) -> list[int] | None:
    return None if rows is None else [row[0] for row in rows]


def test_a_read_is_answered_only_when_the_run_holds_the_next_offset() -> None:
    tails = Tails()
    tails.committed("b", 7, records(7, 11, 5))  # offsets 11..15
    assert offsets(tails.read("b", 10, 100)) == [11, 12, 13, 14, 15]
    assert offsets(tails.read("b", 12, 2)) == [13, 14]
    assert tails.read("b", 9, 100) is None  # offset 10 is not in the run: the database has it
    assert tails.read("b", 15, 100) is None  # past the run: others may have committed more
    assert tails.read("other", 0, 100) is None


def test_a_gap_starts_a_new_run_and_an_older_commit_does_not_replace_a_newer_one() -> None:
    tails = Tails()
    tails.committed("b", 7, records(7, 1, 3))
    tails.committed("b", 7, records(7, 4, 2))  # follows: the run grows
    assert offsets(tails.read("b", 0, 100)) == [1, 2, 3, 4, 5]
    tails.committed("b", 7, records(7, 9, 2))  # 6..8 were another process's: a new run
    assert tails.read("b", 0, 100) is None
    assert tails.read("b", 5, 100) is None
    assert offsets(tails.read("b", 8, 100)) == [9, 10]
    tails.committed("b", 7, records(7, 6, 3))  # finishing late: the newer run stays
    assert offsets(tails.read("b", 8, 100)) == [9, 10]
    tails.committed("b", 8, records(8, 11, 1))  # the bus was recreated (a new id)
    assert tails.read("b", 8, 100) is None
    assert offsets(tails.read("b", 10, 100)) == [11]


def test_forget_clear_and_the_bounds() -> None:
    tails = Tails(events_per_bus=3, bytes_in_all=10)
    tails.committed("a", 1, records(1, 1, 7, "xy"))  # 14 characters: over the budget alone
    assert tails.read("a", 0, 10) is None
    tails = Tails(events_per_bus=3, bytes_in_all=100)
    tails.committed("a", 1, records(1, 1, 7))
    assert offsets(tails.read("a", 4, 10)) == [5, 6, 7]  # the newest 3 kept
    assert tails.read("a", 0, 10) is None
    tails.committed("b", 2, records(2, 1, 1))
    tails.forget("a")
    assert tails.read("a", 4, 10) is None
    assert offsets(tails.read("b", 0, 10)) == [1]
    tails.clear()
    assert tails.read("b", 0, 10) is None
    tails = Tails(bytes_in_all=8)
    tails.committed("old", 1, records(1, 1, 2, "abc"))
    tails.committed("new", 2, records(2, 1, 1, "abc"))  # 9 characters: the oldest bus goes
    assert tails.read("old", 0, 10) is None
    assert offsets(tails.read("new", 0, 10)) == [1]
