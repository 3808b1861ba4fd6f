"""What the instances API asks of the engine that runs instances, whichever it is.

The PostgreSQL engine (:class:`~tideflow.runtime.hosts.durable.DurableRuntime`)
and the Temporal engine (:class:`~tideflow.runtime.hosts.temporal.runtime.TemporalRuntime`)
both offer it, so ``/workflows/{id}/instances`` and ``/instances/{id}`` answer
the same under ``tideflow serve --engine postgres`` and ``--engine temporal``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tideflow.runtime.rows import InstanceRow

__all__ = ["InstanceEngine"]


class InstanceEngine(Protocol):
    """Starts, waits for, cancels, suspends and resumes instances."""

    async def start_instance(
        self,
        workflow_id: str,
        input: Any,
        *,
        version: str | None = None,
        parent_id: str | None = None,
        instance_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> InstanceRow:
        """Create an instance and run it (``headers``: its start request's, filtered)."""
        ...

    async def start_instances(
        self,
        workflow_id: str,
        inputs: Sequence[Any],
        *,
        version: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> list[InstanceRow]:
        """Create instances of one version, all or none, and run them."""
        ...

    async def wait_for_completion(
        self,
        instance_id: str,
        timeout: float | None,  # noqa: ASYNC109 -- the API passes ?wait=SECONDS
    ) -> InstanceRow:
        """The instance once it ended, or as it is after ``timeout`` seconds."""
        ...

    async def cancel(self, instance_id: str) -> InstanceRow:
        """Cancel an instance."""
        ...

    async def suspend(self, instance_id: str) -> InstanceRow:
        """Suspend an instance."""
        ...

    async def resume(self, instance_id: str) -> InstanceRow:
        """Resume a suspended instance."""
        ...

    async def retry(self, instance_id: str) -> InstanceRow:
        """Run a failed instance again from its failed step."""
        ...
