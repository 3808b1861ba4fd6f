"""Retry back-off arithmetic and the instance state's serialisation."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tideflow.runtime.retry import (
    AUTO_RETRY_POLICY,
    RetryPolicy,
    backoff_seconds,
    policy_from_definition,
    unit_draw,
)
from tideflow.runtime.state import SCHEMA_VERSION, InstanceState, from_json
from tideflow.runtime.status import InstanceStatus


def _def(**fields: object) -> SimpleNamespace:
    base = {"name": "r", "max_attempts": 3, "delay": None, "max_delay": None, "increment": None}
    base.update({"multiplier": None, "jitter": None})
    base.update(fields)
    return SimpleNamespace(**base)


@pytest.mark.parametrize(
    ("fields", "delays"),
    [
        ({"delay": "PT10S", "increment": "PT2S"}, [10, 12, 14, 16]),  # spec example
        ({"delay": "PT10S", "multiplier": 2}, [10, 20, 40, 80]),  # spec example
        ({"delay": "PT10S", "multiplier": "2", "max_delay": "PT30S"}, [10, 20, 30, 30]),
        ({"delay": "PT1S"}, [1, 1, 1, 1]),
        ({}, [0, 0, 0, 0]),
    ],
)
def test_backoff_sequences(fields: dict[str, Any], delays: list[Any]) -> None:
    policy = policy_from_definition(_def(**fields))
    assert [backoff_seconds(policy, n) for n in range(1, 5)] == delays


@pytest.mark.parametrize(
    ("jitter", "draw", "expected"),
    [
        (0.5, 1.0, 15.0),
        (0.5, -1.0, 5.0),
        ("PT3S", 1.0, 13.0),
        ("PT3S", -1.0, 7.0),
        (0.5, 0.0, 10.0),
    ],
)
def test_jitter_fraction_or_duration(jitter: object, draw: float, expected: float) -> None:
    policy = policy_from_definition(_def(delay="PT10S", jitter=jitter))
    assert backoff_seconds(policy, 1, draw) == pytest.approx(expected)


def test_max_delay_caps_after_jitter() -> None:
    policy = policy_from_definition(_def(delay="PT10S", jitter=0.5, max_delay="PT12S"))
    assert backoff_seconds(policy, 1, 1.0) == 12.0


@pytest.mark.parametrize(("attempts", "allowed"), [(0, 1), (1, 1), (3, 3), ("5", 5)])
def test_max_attempts_counts_the_first_try(attempts: object, allowed: int) -> None:
    policy = policy_from_definition(_def(max_attempts=attempts))
    assert policy.max_attempts == allowed
    assert [policy.allows(n) for n in range(1, allowed + 1)] == [True] * (allowed - 1) + [False]


def test_bad_fields_are_named() -> None:
    with pytest.raises(ValueError, match="delay"):
        policy_from_definition(_def(delay="ten seconds"))
    with pytest.raises(ValueError, match="multiplier"):
        policy_from_definition(_def(multiplier="x"))


def test_unit_draw_is_deterministic_and_spread() -> None:
    draws = [unit_draw("seed", f"k{i}") for i in range(200)]
    assert draws == [unit_draw("seed", f"k{i}") for i in range(200)]
    assert all(-1.0 <= d <= 1.0 for d in draws)
    assert min(draws) < -0.8
    assert max(draws) > 0.8
    assert unit_draw("other", "k0") != draws[0]


def test_auto_retry_default_is_unlimited_doubling_from_one_second() -> None:
    assert AUTO_RETRY_POLICY.max_attempts is None
    assert AUTO_RETRY_POLICY.allows(10_000)
    assert [backoff_seconds(AUTO_RETRY_POLICY, n) for n in (1, 2, 3, 8)] == [1, 2, 4, 60]
    assert isinstance(AUTO_RETRY_POLICY, RetryPolicy)


def test_instance_state_round_trip() -> None:
    state = InstanceState(
        instance_id="i1",
        workflow_id="wf",
        workflow_version="2",
        status=InstanceStatus.FAILED,
        current_state=None,
        data={"a": [1, 2]},
        error={"name": "timeout", "code": "TIMEOUT", "message": "m", "state": "S"},
        visits={"S": 2},
        compensable=("A", "B"),
        seed="seed",
        started_at="2026-01-01T00:00:00Z",
    )
    doc = state.to_json()
    assert doc["schema_version"] == SCHEMA_VERSION
    assert from_json(doc) == state


def test_instance_state_upgrades_version_1() -> None:
    old = {
        "schema_version": 1,
        "instance_id": "i",
        "workflow_id": "w",
        "status": "running",
        "completed": ["A"],
    }
    state = from_json(old)
    assert state.compensable == ("A",)
    assert state.seed == ""


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"schema_version": 99, "instance_id": "i", "workflow_id": "w", "status": "running"},
            "schema_version",
        ),
        ({"schema_version": 2, "workflow_id": "w", "status": "running"}, "instance_id"),
        (
            {"schema_version": 2, "instance_id": "i", "workflow_id": "w", "status": "weird"},
            "status",
        ),
    ],
)
def test_instance_state_rejects_bad_documents(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_json(doc)


@given(
    delay=st.floats(min_value=0, max_value=3600),
    multiplier=st.floats(min_value=1, max_value=10),
    increment=st.floats(min_value=0, max_value=600),
    fraction=st.floats(min_value=0, max_value=1),
    cap=st.floats(min_value=0.1, max_value=7200),
    retry=st.integers(min_value=1, max_value=12),
    draw=st.floats(min_value=-1, max_value=1),
)
def test_backoff_bounds(
    delay: float,
    multiplier: float,
    increment: float,
    fraction: float,
    cap: float,
    retry: int,
    draw: float,
) -> None:
    policy = RetryPolicy(
        name="p",
        delay=delay,
        multiplier=multiplier,
        increment=increment,
        jitter_fraction=fraction,
        max_delay=cap,
    )
    plain = RetryPolicy(name="p", delay=delay, multiplier=multiplier, increment=increment)
    base = backoff_seconds(plain, retry)
    value = backoff_seconds(policy, retry, draw)
    assert 0.0 <= value <= cap
    assert value <= base * (1 + fraction) + 1e-6
    assert value >= min(cap, base * (1 - fraction)) - 1e-6
    assert backoff_seconds(plain, retry + 1) >= base
