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

Units that are parts of one piece of work (:func:`groups`: ``<name>`` and
``<name>.<n>``, the workflow subscriber's partitions) are shared out among
themselves first, so each process gets its share of that work and not only
of the units in total; the other units are shared out after them, their one-more
quotas going to the processes with fewest units so far, so the totals stay
within one of each other too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Moves", "groups", "moves_for", "plan", "quotas"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Moves:
    """What one process does to follow a plan.

    Attributes:
        acquire: Units the plan gives it that it does not run yet (taken if free).
        release: Units it runs or leases that the plan gives to another or that are gone.
    """

    acquire: tuple[str, ...] = ()
    release: tuple[str, ...] = ()


def quotas(
    nodes: Sequence[str],
    total: int,
    owned: Mapping[str, int],
    before: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """How many units each node should own.

    Args:
        nodes: The live nodes.
        total: The number of units.
        owned: How many units each node owns now (absent: none).
        before: How many units of other groups each node was given already
            (absent: none); the one-more quotas go to those given fewest first.

    Returns:
        ``node -> quota``; the quotas add up to ``total`` (empty without nodes).
    """
    if not nodes:
        return {}
    given = before or {}
    base, extra = divmod(total, len(nodes))
    # The extra units go to those owning most already: a one-unit difference moves nothing.
    ranked = sorted(set(nodes), key=lambda n: (given.get(n, 0), -owned.get(n, 0), n))
    return {node: base + (1 if i < extra else 0) for i, node in enumerate(ranked)}


def _base(unit: str) -> str:
    name, dot, part = unit.rpartition(".")
    return name if dot and name and part.isdigit() else unit


def groups(units: Iterable[str]) -> dict[str, list[str]]:
    """Units by the piece of work they are parts of, each list sorted.

    ``<name>.<n>`` (``n`` digits) and ``<name>`` itself are parts of ``<name>``
    (the workflow subscriber's ``subscription:tideflow.workflows`` and
    ``subscription:tideflow.workflows.1``, ...); every other unit is in the group ``""``.
    """
    wanted = sorted(set(units))
    parted = {base for unit in wanted if (base := _base(unit)) != unit}
    found: dict[str, list[str]] = {}
    for unit in wanted:
        base = _base(unit)
        found.setdefault(base if base in parted else "", []).append(unit)
    return found


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
    if not live:
        return {}
    target: dict[str, str] = {}
    given = dict.fromkeys(live, 0)
    parted = groups(units)
    for key in sorted(parted, key=lambda g: (g == "", g)):  # the parts of a piece of work first
        for unit, node in _plan_group(live, parted[key], owners, given).items():
            target[unit] = node
            given[node] += 1
    return target


def _plan_group(
    live: list[str], wanted: list[str], owners: Mapping[str, str], given: Mapping[str, int]
) -> dict[str, str]:
    """The owners of one group's ``wanted`` units (sorted) on the ``live`` nodes (sorted)."""
    current: dict[str, list[str]] = {node: [] for node in live}
    for unit in wanted:
        owner = owners.get(unit)
        if owner in current:
            current[owner].append(unit)
    quota = quotas(live, len(wanted), {n: len(us) for n, us in current.items()}, given)
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


def moves_for(
    node: str, target: Mapping[str, str], running: Iterable[str], leased: Iterable[str] = ()
) -> Moves:
    """What ``node`` does to follow ``target``.

    Args:
        node: This node.
        target: The plan (:func:`plan`).
        running: The units this node runs now.
        leased: The units whose lease the database says this node holds, run here or not:
            one it stopped and failed to release (the statement failed), or one of its
            previous life (a restart) that the plan gives to another, is released too;
            one the plan gives to it is acquired again (and run).

    Returns:
        The units to take and to let go, each sorted.
    """
    held = set(running)
    acquire = sorted(u for u, owner in target.items() if owner == node and u not in held)
    release = sorted(u for u in held.union(leased) if target.get(u) != node)
    return Moves(acquire=tuple(acquire), release=tuple(release))
