"""Who owns what: the fair share of units among live processes (pure, no I/O).

A *unit* is a piece of work one process runs at a time (a subscription, a
connector, the workflow subscriber), named by a string. Every process
computes the same :func:`plan` from the same view (the live processes and
the current owners), then takes the units the plan gives it and lets go of
the ones the plan gives to another (:func:`moves_for`). No process decides
for the others: they agree because the plan is a function of what they all read.

The plan keeps churn low: each process keeps the units it owns up to its
quota (``units // processes``, one more for the first ``units % processes``
of them, the ones owning most first), so once every process owns its quota
nothing moves; only a process over its quota, a gone process's units and new
units are handed out, to the processes furthest under their quota.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Moves", "moves_for", "plan", "quotas"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Moves:
    """What one process does to follow a plan.

    Attributes:
        acquire: Units the plan gives it that it does not run yet (taken if free).
        release: Units it runs that the plan gives to another or that are gone.
    """

    acquire: tuple[str, ...] = ()
    release: tuple[str, ...] = ()


def quotas(nodes: Sequence[str], total: int, owned: Mapping[str, int]) -> dict[str, int]:
    """How many units each node should own.

    Args:
        nodes: The live nodes.
        total: The number of units.
        owned: How many units each node owns now (absent: none).

    Returns:
        ``node -> quota``; the quotas add up to ``total`` (empty without nodes).
    """
    if not nodes:
        return {}
    base, extra = divmod(total, len(nodes))
    # The extra units go to those owning most already: a one-unit difference moves nothing.
    ranked = sorted(set(nodes), key=lambda n: (-owned.get(n, 0), n))
    return {node: base + (1 if i < extra else 0) for i, node in enumerate(ranked)}


def plan(nodes: Iterable[str], units: Iterable[str], owners: Mapping[str, str]) -> dict[str, str]:
    """The owner every unit should have.

    Args:
        nodes: The live nodes.
        units: Every unit that exists.
        owners: ``unit -> node`` for the units owned now under a live lease
            (owners that are not live nodes, and units that do not exist, are ignored).

    Returns:
        ``unit -> node`` for every unit (empty without nodes).
    """
    live = sorted(set(nodes))
    wanted = sorted(set(units))
    if not live:
        return {}
    current: dict[str, list[str]] = {node: [] for node in live}
    for unit in wanted:
        owner = owners.get(unit)
        if owner in current:
            current[owner].append(unit)
    quota = quotas(live, len(wanted), {n: len(us) for n, us in current.items()})
    target: dict[str, str] = {}
    room = dict(quota)
    for node in live:
        for unit in current[node][: quota[node]]:  # units are sorted: the kept ones are stable
            target[unit] = node
            room[node] -= 1
    for unit in wanted:
        if unit not in target:
            node = min(live, key=lambda n: (-room[n], n))
            target[unit] = node
            room[node] -= 1
    return target


def moves_for(node: str, target: Mapping[str, str], running: Iterable[str]) -> Moves:
    """What ``node`` does to follow ``target``.

    Args:
        node: This node.
        target: The plan (:func:`plan`).
        running: The units this node runs now.

    Returns:
        The units to take and to let go, each sorted.
    """
    held = set(running)
    acquire = sorted(u for u, owner in target.items() if owner == node and u not in held)
    release = sorted(u for u in held if target.get(u) != node)
    return Moves(acquire=tuple(acquire), release=tuple(release))
