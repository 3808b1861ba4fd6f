"""The timing wheel against a naive sorted-list model (hypothesis), plus edge cases."""

from __future__ import annotations

import ast
import math
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tideflow.timer
from tideflow.errors import ConfigurationError
from tideflow.timer.wheel import DueTimer, TimingWheel


@dataclass
class Model:
    """The obviously-correct timer queue: a list, sorted when asked."""

    pending: list[tuple[float, int, str, Any]] = field(default_factory=list)
    seq: int = 0

    def add(self, timer_id: str, due: float, payload: Any) -> None:
        self.seq += 1
        self.pending.append((due, self.seq, timer_id, payload))

    def cancel(self, timer_id: str) -> None:
        self.pending = [p for p in self.pending if p[2] != timer_id]

    def advance(self, now: float) -> list[DueTimer]:
        due = sorted(p for p in self.pending if p[0] <= now)
        self.pending = [p for p in self.pending if p[0] > now]
        return [DueTimer(tid, d, payload) for d, _, tid, payload in due]


ids = st.sampled_from([f"t{i}" for i in range(12)])
# Dues on a coarse grid collide often (ties), plus arbitrary floats and far-future ones.
dues = st.one_of(
    st.integers(0, 400).map(lambda n: n / 4),
    st.floats(0, 200, allow_nan=False),
    st.floats(0, 1e7, allow_nan=False),
)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), ids, dues),
        st.tuples(st.just("cancel"), ids, st.just(0.0)),
        st.tuples(st.just("advance"), st.just(""), st.floats(0, 60, allow_nan=False)),
        st.tuples(st.just("jump"), st.just(""), st.floats(0, 1e7, allow_nan=False)),
    ),
    max_size=120,
)


def run_ops(wheel: TimingWheel, model: Model, script: list[tuple[str, str, float]]) -> float:
    now = 0.0
    for n, (op, timer_id, value) in enumerate(script):
        if op == "add":
            wheel.add(timer_id, value, n)
            model.add(timer_id, value, n)
        elif op == "cancel":
            wheel.cancel(timer_id)
            model.cancel(timer_id)
        else:
            now = now + value if op == "advance" else max(now, value)
            fired = wheel.advance(now)
            assert fired == model.advance(now)
            assert all(t.due <= now for t in fired), "fired early"
    return now


@settings(max_examples=300, deadline=None)
@given(script=ops, slots=st.sampled_from([2, 4, 256]), tick=st.sampled_from([0.01, 0.5, 3.0]))
def test_wheel_matches_model(script: list[tuple[str, str, float]], slots: int, tick: float) -> None:
    wheel = TimingWheel(0.0, tick=tick, slots=slots)
    model = Model()
    now = run_ops(wheel, model, script)
    # Drain everything left: same timers, same order, none early.
    final = now + 2e7
    assert wheel.advance(final) == model.advance(final)
    assert wheel.next_deadline() is None or not model.pending


@settings(max_examples=200, deadline=None)
@given(script=ops, slots=st.sampled_from([2, 8, 256]))
def test_next_deadline_is_a_lower_bound_that_leads_to_the_next_timer(
    script: list[tuple[str, str, float]], slots: int
) -> None:
    wheel = TimingWheel(0.0, tick=0.25, slots=slots)
    model = Model()
    now = run_ops(wheel, model, script)
    while model.pending:
        earliest = min(model.pending)
        fired: list[DueTimer] = []
        for _ in range(64):  # one call per level at most, in practice
            deadline = wheel.next_deadline()
            assert deadline is not None
            assert deadline <= earliest[0]
            now = max(now, deadline)
            fired = wheel.advance(now)
            if fired:
                break
        assert fired, "next_deadline never led to the earliest timer"
        assert fired == model.advance(now)
        assert fired[0].due == earliest[0]


@settings(max_examples=100, deadline=None)
@given(
    delays=st.lists(st.floats(0, 1000, allow_nan=False), min_size=1, max_size=60),
    steps=st.lists(st.floats(0.001, 50, allow_nan=False), min_size=1, max_size=60),
)
def test_every_timer_fires_once_and_never_early(delays: list[float], steps: list[float]) -> None:
    wheel = TimingWheel(100.0, tick=0.01, slots=16)
    for i, delay in enumerate(delays):
        wheel.add(i, 100.0 + delay)
    seen: list[int] = []
    now = 100.0
    for step in [*steps, 2000.0]:
        now += step
        for timer in wheel.advance(now):
            assert timer.due <= now
            seen.append(int(timer.id))  # type: ignore[call-overload]
    assert sorted(seen) == list(range(len(delays)))


def test_ties_fire_in_insertion_order_across_cascades() -> None:
    wheel = TimingWheel(0.0, tick=1.0, slots=2)
    wheel.add("far-a", 1000.0)
    wheel.advance(500.0)
    wheel.add("far-b", 1000.0)
    wheel.add("near", 999.5)
    wheel.advance(999.0)
    wheel.add("far-c", 1000.0)
    assert [t.id for t in wheel.advance(1000.0)] == ["near", "far-a", "far-b", "far-c"]


def test_overdue_timers_fire_on_next_advance_in_due_order() -> None:
    wheel = TimingWheel(50.0)
    wheel.add("b", 20.0, "B")
    wheel.add("a", 10.0, "A")
    wheel.add("later", 50.5)
    assert wheel.advance(50.0) == [DueTimer("a", 10.0, "A"), DueTimer("b", 20.0, "B")]
    assert wheel.advance(50.49) == []
    assert [t.id for t in wheel.advance(50.5)] == ["later"]


def test_not_early_within_a_tick() -> None:
    wheel = TimingWheel(0.0, tick=1.0)
    wheel.add("x", 5.7)
    assert wheel.advance(5.69) == []
    assert wheel.next_deadline() == 5.7
    assert [t.id for t in wheel.advance(5.7)] == ["x"]


def test_cancel_then_re_add_keeps_only_the_new_timer() -> None:
    wheel = TimingWheel(0.0, tick=0.01, slots=4)
    wheel.add("x", 100.0, "old")
    wheel.cancel("x")
    wheel.add("x", 100.0, "new")
    wheel.cancel("never-added")
    assert wheel.advance(200.0) == [DueTimer("x", 100.0, "new")]


def test_far_future_grows_levels_without_a_horizon() -> None:
    wheel = TimingWheel(0.0, tick=0.01, slots=4)
    wheel.add("century", 3.2e9)
    wheel.add("soon", 1.0)
    deadline = wheel.next_deadline()
    assert deadline is not None
    assert 0.0 < deadline <= 1.0
    assert [t.id for t in wheel.advance(1.0)] == ["soon"]
    deadline = wheel.next_deadline()
    assert deadline is not None
    assert deadline <= 3.2e9
    assert wheel.advance(3.2e9 - 0.001) == []
    assert [t.id for t in wheel.advance(3.2e9)] == ["century"]
    assert wheel.next_deadline() is None


def test_cancelled_entries_are_swept_so_memory_stays_bounded() -> None:
    wheel = TimingWheel(0.0, tick=0.01)
    for round_ in range(5):
        for i in range(2000):
            wheel.add(f"r{round_}-{i}", 3600.0 + i)
        for i in range(2000):
            wheel.cancel(f"r{round_}-{i}")
    wheel.add("kept", 3600.0)
    assert wheel.size <= 2 * 1024 + 1  # at most about as many cancelled entries as a sweep allows
    assert [t.id for t in wheel.advance(10_000.0)] == ["kept"]
    assert wheel.size == 0


@pytest.mark.parametrize("bad", [math.nan, math.inf, "soon"])
def test_bad_due_time_is_a_clear_error(bad: Any) -> None:
    wheel = TimingWheel()
    with pytest.raises(ValueError, match=r"timer 'x': due time must be a finite number"):
        wheel.add("x", bad)
    assert wheel.size == 0


@pytest.mark.parametrize(("tick", "slots"), [(0.0, 256), (-1.0, 256), (0.01, 3), (0.01, 1)])
def test_bad_configuration_is_rejected(tick: float, slots: int) -> None:
    with pytest.raises(ConfigurationError, match="timing wheel"):
        TimingWheel(tick=tick, slots=slots)


def test_time_going_backwards_fires_nothing_early() -> None:
    wheel = TimingWheel(0.0, tick=0.1)
    wheel.add("a", 10.0)
    wheel.add("b", 5.0)
    assert [t.id for t in wheel.advance(7.0)] == ["b"]
    assert wheel.advance(3.0) == []
    assert [t.id for t in wheel.advance(10.0)] == ["a"]


def test_pure_timer_modules_do_no_io() -> None:
    """The wheel and the schedules are pure: no database, network or asyncio imports."""
    banned = {"asyncio", "asyncpg", "httpx", "fastapi", "tideflow.db", "tideflow.clock"}
    root = Path(tideflow.timer.__file__).parent
    for name in ("wheel.py", "schedules.py", "records.py"):
        tree = ast.parse((root / name).read_text(encoding="utf-8"))
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        imported |= {
            node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        }
        assert not {m.split(".")[0] for m in imported} & banned, name
        assert not imported & banned, name


def test_timer_package_exports_what_it_lists() -> None:
    exported = set(tideflow.timer.__all__)
    public = {
        name
        for name in dir(tideflow.timer)
        if not name.startswith("_")
        and name != "annotations"
        and not isinstance(getattr(tideflow.timer, name), types.ModuleType)
    }
    assert exported == public
