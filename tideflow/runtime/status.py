"""The status of a workflow instance: one vocabulary for the store, the API, the CLI and events."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["InstanceStatus"]


class InstanceStatus(StrEnum):
    """Where an instance is in its life.

    The values are the strings users see (``GET /instances``, ``tideflow
    instances``, lifecycle events, the ``tideflow_instances.status`` column).
    """

    RUNNING = "running"
    """Runnable or being run (a ``continueAs`` run too)."""
    WAITING = "waiting"
    """Parked until an event, a timer or a sub-flow wakes it."""
    SUSPENDED = "suspended"
    """Stopped on request until resumed."""
    COMPLETED = "completed"
    """Ended with an output (``end.terminate`` and workflow timeouts too)."""
    FAILED = "failed"
    """Ended with an unhandled error."""
    CANCELLED = "cancelled"
    """Ended on request."""

    @property
    def final(self) -> bool:
        """Whether an instance with this status has ended for good."""
        return self in _FINAL


_FINAL = frozenset({InstanceStatus.COMPLETED, InstanceStatus.FAILED, InstanceStatus.CANCELLED})
