"""Tideflow cluster: several ``tideflow serve`` processes on one database share the work.

Each process heartbeats in a membership table; each unit of work (a
subscription, a connector, the workflow subscriber) is owned by one live
process under a lease with a fencing token; every process follows the same
fair-share plan (:mod:`tideflow.cluster.assignment`), so units move when a
process joins or leaves. See ``docs/architecture.md``.
"""

from __future__ import annotations

from tideflow.cluster.assignment import Moves, moves_for, plan, quotas

__all__ = ["Moves", "moves_for", "plan", "quotas"]
