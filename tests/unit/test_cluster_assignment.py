"""The fair share of units among live processes (tideflow.cluster.assignment)."""

from __future__ import annotations

import random
from collections import Counter

from tideflow.cluster.assignment import Moves, moves_for, plan, quotas

UNITS = [f"subscription:s{i:02d}" for i in range(30)]


def _counts(target: dict[str, str]) -> Counter[str]:
    return Counter(target.values())


def test_thirty_units_on_three_nodes_are_ten_each() -> None:
    target = plan(["a", "b", "c"], UNITS, {})
    assert sorted(target) == UNITS
    assert _counts(target) == {"a": 10, "b": 10, "c": 10}


def test_quotas_add_up_and_the_extra_goes_to_those_owning_most() -> None:
    assert quotas(["a", "b", "c"], 10, {"c": 7}) == {"c": 4, "a": 3, "b": 3}
    assert sum(quotas(["a", "b"], 7, {}).values()) == 7
    assert quotas([], 5, {}) == {}


def test_no_nodes_no_plan() -> None:
    assert plan([], UNITS, {}) == {}


def test_a_balanced_assignment_moves_nothing() -> None:
    first = plan(["a", "b", "c"], UNITS, {})
    assert plan(["a", "b", "c"], UNITS, first) == first
    for node in "abc":
        assert moves_for(node, first, [u for u, n in first.items() if n == node]) == Moves()


def test_a_gone_node_s_units_are_spread_over_the_others_and_nothing_else_moves() -> None:
    first = plan(["a", "b", "c"], UNITS, {})
    owners = {u: n for u, n in first.items() if n != "c"}
    second = plan(["a", "b"], UNITS, owners)
    assert _counts(second) == {"a": 15, "b": 15}
    assert all(second[u] == n for u, n in owners.items())  # the survivors keep theirs


def test_a_returning_node_gets_its_share_back_from_each_of_the_others() -> None:
    two = plan(["a", "b"], UNITS, {})
    three = plan(["a", "b", "c"], UNITS, two)
    assert _counts(three) == {"a": 10, "b": 10, "c": 10}
    moved = [u for u in UNITS if three[u] != two[u]]
    assert len(moved) == 10  # only c's share moves
    assert moves_for("a", three, [u for u, n in two.items() if n == "a"]).acquire == ()
    assert len(moves_for("a", three, [u for u, n in two.items() if n == "a"]).release) == 5
    assert len(moves_for("c", three, []).acquire) == 10


def test_owners_that_are_not_live_and_units_that_are_gone_are_ignored() -> None:
    target = plan(["a"], ["u1", "u2"], {"u1": "ghost", "u3": "a"})
    assert target == {"u1": "a", "u2": "a"}
    assert moves_for("a", target, ["u3", "u1"]) == Moves(acquire=("u2",), release=("u3",))


def test_nodes_agree_whatever_order_they_list_things_in() -> None:
    owners = {UNITS[0]: "b", UNITS[1]: "b", UNITS[2]: "c"}
    one = plan(["c", "a", "b"], list(reversed(UNITS)), owners)
    two = plan(["a", "b", "c", "a"], UNITS, dict(reversed(list(owners.items()))))
    assert one == two


def test_random_joins_and_leaves_stay_fair_and_move_only_what_they_must() -> None:
    rng = random.Random(12)
    nodes = ["a", "b", "c"]
    owners = plan(nodes, UNITS, {})
    for _ in range(200):
        if len(nodes) > 1 and rng.random() < 0.5:
            gone = rng.choice(nodes)
            nodes = [n for n in nodes if n != gone]
        else:
            nodes = sorted({*nodes, rng.choice("abcdef")})
        units = UNITS[: rng.randint(1, len(UNITS))]
        kept = {u: n for u, n in owners.items() if n in nodes and u in units}
        target = plan(nodes, units, kept)
        counts = _counts(target)
        assert max(counts.values()) - min(counts.get(n, 0) for n in nodes) <= 1
        assert sorted(target) == sorted(units)
        # A unit changes owner only when its owner holds more than its quota.
        held = Counter(kept.values())
        quota = quotas(nodes, len(units), held)
        for unit, owner in kept.items():
            if target[unit] != owner:
                assert held[owner] > quota[owner]
        owners = target
