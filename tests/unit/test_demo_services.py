"""The demo services' state (tideflow/demo.py): the same answers whatever ran before."""

from __future__ import annotations

from tideflow.demo import FLAKY_MEMORY, Flaky, Pets


def test_a_pet_is_added_once_by_name_and_each_service_keeps_its_own() -> None:
    rest, graphql = Pets(), Pets()
    first = rest.add({"name": "Kit", "tag": "cat"})
    assert first["id"] == 4
    assert rest.add({"name": "Kit", "tag": "cat"}) == first
    assert graphql.add({"name": "Rex Jr."})["id"] == 4
    assert [p["name"] for p in rest.matching(["cat"])] == ["Tom", "Kit"]
    assert len(rest.matching([])) == 4


def test_a_flaky_key_fails_its_first_calls_then_starts_over() -> None:
    now = [0.0]
    flaky = Flaky(clock=lambda: now[0])
    assert [flaky.call("k", 2) for _ in range(3)] == [None, None, 3]
    assert [flaky.call("k", 2) for _ in range(3)] == [None, None, 3]  # forgotten after success
    assert flaky.call("bad", 5) is None
    now[0] += FLAKY_MEMORY + 1
    assert [flaky.call("bad", 1), flaky.call("bad", 1)] == [None, 2]  # forgotten after a pause
