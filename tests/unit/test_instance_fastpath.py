"""Which requests the instance fast path answers itself (the rest go to FastAPI's routes)."""

from __future__ import annotations

import pytest

from tideflow.api.instance_fastpath import plain_query, show_path, start_path
from tideflow.api.routes.instances import MAX_WAIT_SECONDS, check_wait
from tideflow.errors import InvalidParameter


def test_only_a_single_start_path_names_a_workflow() -> None:
    assert start_path("/workflows/greeter/instances") == "greeter"
    assert start_path("/workflows/greeter/instances:batch") is None
    assert start_path("/workflows//instances") is None
    assert start_path("/workflows/a/b/instances") is None
    assert start_path("/workflows/greeter") is None


def test_only_an_instance_path_names_an_instance() -> None:
    assert show_path("/instances/01ABC") == "01ABC"
    assert show_path("/instances/01ABC/timeline") is None
    assert show_path("/instances/") is None
    assert show_path("/instances") is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"", {}),
        (b"wait=30", {"wait": "30"}),
        (b"version=2&wait=0.5", {"version": "2", "wait": "0.5"}),
        (b"wait=99999", {"wait": "99999"}),  # a number: the range is checked as the route does
    ],
)
def test_a_plain_query_is_taken(query: bytes, expected: dict[str, str]) -> None:
    assert plain_query(query, frozenset({"version", "wait"})) == expected


@pytest.mark.parametrize(
    "query",
    [
        b"timeline",  # unknown: the route's 422 names it
        b"wait=1&wait=2",  # repeated
        b"wait=soon",  # not a number: the route's 400
        b"version=2",  # not taken by a show
    ],
)
def test_anything_else_goes_to_the_route(query: bytes) -> None:
    assert plain_query(query, frozenset({"wait"})) is None


def test_one_wait_rule() -> None:
    check_wait(None)
    check_wait(0)
    check_wait(MAX_WAIT_SECONDS)
    for bad in (-0.1, MAX_WAIT_SECONDS + 0.1, float("nan"), float("inf")):
        with pytest.raises(InvalidParameter) as caught:
            check_wait(bad)
        assert caught.value.argument == "wait"
