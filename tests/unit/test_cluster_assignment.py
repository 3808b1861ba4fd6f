"""The fair share of units among live processes (tideflow.cluster.assignment)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator

from tideflow.cluster.assignment import Moves, groups, moves_for, plan, quotas

UNITS = [f"subscription:s{i:02d}" for i in range(30)]
WORKFLOWS = "subscription:tideflow.workflows"
PARTS = [WORKFLOWS, *(f"{WORKFLOWS}.{i}" for i in (1, 2, 3))]
Step = tuple[list[str], list[str]]
"""The live nodes and the units that exist."""


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


def test_leases_of_units_not_run_here_are_let_go_or_taken_again_by_the_plan() -> None:
    # u1 and u3 were stopped here but their leases are still this node's (a release that
    # failed, a previous life): the plan gives u3 to b -- let go; u1 stays here -- taken again.
    target = {"u1": "a", "u2": "a", "u3": "b"}
    moves = moves_for("a", target, ["u2"], leased=["u1", "u2", "u3"])
    assert moves == Moves(acquire=("u1",), release=("u3",))
    assert moves_for("b", target, ["u3"], leased=["u3"]) == Moves()


def test_nodes_agree_whatever_order_they_list_things_in() -> None:
    owners = {UNITS[0]: "b", UNITS[1]: "b", UNITS[2]: "c"}
    one = plan(["c", "a", "b"], list(reversed(UNITS)), owners)
    two = plan(["a", "b", "c", "a"], UNITS, dict(reversed(list(owners.items()))))
    assert one == two


def _walk(seed: int, units_of: Callable[[random.Random], list[str]]) -> Iterator[Step]:
    """200 random joins and leaves of nodes among a-f (starting with a, b, c), each with the
    units ``units_of`` draws."""
    rng = random.Random(seed)
    nodes = ["a", "b", "c"]
    for _ in range(200):
        if len(nodes) > 1 and rng.random() < 0.5:
            gone = rng.choice(nodes)
            nodes = [n for n in nodes if n != gone]
        else:
            nodes = sorted({*nodes, rng.choice("abcdef")})
        yield nodes, units_of(rng)


def test_random_joins_and_leaves_stay_fair_and_move_only_what_they_must() -> None:
    owners = plan(["a", "b", "c"], UNITS, {})
    for nodes, units in _walk(12, lambda rng: UNITS[: rng.randint(1, len(UNITS))]):
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


def test_the_parts_of_one_piece_of_work_are_a_group_and_the_rest_another() -> None:
    found = groups([*UNITS[:2], *reversed(PARTS), "connector:c.x", "subscription:v.2"])
    assert found == {
        "": ["connector:c.x", *UNITS[:2]],
        "subscription:tideflow.workflows": PARTS,
        "subscription:v": ["subscription:v.2"],
    }
    assert groups([WORKFLOWS]) == {"": [WORKFLOWS]}


def _fair(nodes: list[str], target: dict[str, str]) -> None:
    """Every node within one of the others, in the partitions and in total."""
    totals = _counts(target)
    parts = Counter(node for unit, node in target.items() if unit in PARTS)
    for counts in (totals, parts):
        assert max(counts.get(n, 0) for n in nodes) - min(counts.get(n, 0) for n in nodes) <= 1


def test_partitions_are_shared_out_among_themselves_whoever_joined_first() -> None:
    units = [*UNITS, *PARTS]
    # a started alone and owns everything; b and c join one after the other
    owners = plan(["a"], units, {})
    owners = plan(["a", "b"], units, owners)
    owners = plan(["a", "b", "c"], units, owners)
    _fair(["a", "b", "c"], owners)
    assert {owners[p] for p in PARTS} == {"a", "b", "c"}  # each process starts instances
    assert plan(["a", "b", "c"], units, owners) == owners  # and then nothing moves


def test_all_partitions_on_one_node_are_spread_even_when_the_totals_are_fair() -> None:
    units = [*UNITS[:8], *PARTS]  # 12 units: 6 each, but a holds all 4 partitions
    owners = dict.fromkeys([*PARTS, *UNITS[:2]], "a") | dict.fromkeys(UNITS[2:8], "b")
    target = plan(["a", "b"], units, owners)
    _fair(["a", "b"], target)
    assert Counter(target[p] for p in PARTS) == {"a": 2, "b": 2}


def test_random_joins_and_leaves_with_partitions_stay_fair_and_settle() -> None:
    owners = plan(["a", "b", "c"], [*UNITS, *PARTS], {})
    for nodes, units in _walk(7, lambda rng: [*UNITS[: rng.randint(0, len(UNITS))], *PARTS]):
        kept = {u: n for u, n in owners.items() if n in nodes and u in units}
        target = plan(nodes, units, kept)
        assert sorted(target) == sorted(units)
        _fair(nodes, target)
        assert plan(nodes, units, target) == target
        owners = target
