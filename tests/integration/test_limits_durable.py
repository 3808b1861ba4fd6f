"""The durable host under the value limits: nothing too deep reaches the journal's writer."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from tests.integration.durable_support import Calls, call_state, deploy, runtime, workflow
from tideflow.errors import ValueLimitExceeded


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


class DeepCalls(Calls):
    """``inc`` answers with a value nested 300 deep."""

    def inc(self, args: dict[str, Any], idempotency_key: str | None = None) -> Any:
        self.by_key[idempotency_key or ""] += 1
        return _nested(300)


async def test_a_function_result_too_deep_fails_the_instance_once(pool: asyncpg.Pool) -> None:
    calls = DeepCalls()
    await deploy(pool, workflow("deep", [call_state("A", "inc", None)]))
    async with runtime(pool, calls) as rt:
        row = await rt.start_instance("deep", {"n": 1})
        done = await rt.wait_for_completion(row.id, 20)
        again = await rt.start_instance("deep", {"n": 2})  # the writer still works
        later = await rt.wait_for_completion(again.id, 20)
    assert done.status == "failed"
    assert done.error is not None
    assert done.error["code"] == "VALUE_DEPTH_LIMIT"
    assert later.status == "failed"
    assert list(calls.by_key.values()) == [1, 1]  # not retried: it would answer the same


async def test_an_input_too_deep_is_refused_before_the_instance_exists(
    pool: asyncpg.Pool,
) -> None:
    await deploy(pool, workflow("deep", [call_state("A", "inc", None)]))
    async with runtime(pool, Calls()) as rt:
        with pytest.raises(ValueLimitExceeded) as caught:
            await rt.start_instance("deep", {"n": _nested(255)})
        assert caught.value.code == "VALUE_DEPTH_LIMIT"
        row = await rt.start_instance("deep", {"n": 1})
        assert (await rt.wait_for_completion(row.id, 20)).output == {"n": 2}
