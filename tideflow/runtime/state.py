"""The state of one workflow instance, as an immutable, serialisable value.

The interpreter reports an :class:`InstanceState` at every state boundary
(``on_state`` callback) so hosts can show "where is it now" in the status API
and persist it. Change it with :func:`dataclasses.replace`; serialise it with
:meth:`InstanceState.to_json` and read it back with :func:`from_json`, which
upgrades older ``schema_version`` values through :data:`MIGRATIONS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from tideflow.runtime.status import InstanceStatus

SCHEMA_VERSION = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceState:
    """Where an instance is and what it holds.

    Attributes:
        instance_id: The instance's id.
        workflow_id: Its workflow's id.
        workflow_version: Its workflow's version, if any.
        status: The instance's status (``running`` at state boundaries, then
            the one the run's outcome leaves).
        current_state: Name of the state being run (``None`` once ended).
        data: The current state data (JSON).
        output: The workflow output once completed.
        error: The error (``WorkflowError.to_json()``) once failed.
        visits: How often each state was entered (drives step keys).
        compensable: Completed states with ``compensatedBy``, oldest first.
        seed: The run's seed (from ``Effects.new_id``) for deterministic jitter and ids.
        started_at: RFC 3339 start time (from ``Effects.now``).
    """

    instance_id: str
    workflow_id: str
    workflow_version: str | None = None
    status: InstanceStatus = InstanceStatus.RUNNING
    current_state: str | None = None
    data: Any = None
    output: Any = None
    error: Mapping[str, Any] | None = None
    visits: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    compensable: tuple[str, ...] = ()
    seed: str = ""
    started_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON object with ``schema_version``."""
        return {
            "schema_version": SCHEMA_VERSION,
            "instance_id": self.instance_id,
            "workflow_id": self.workflow_id,
            "workflow_version": self.workflow_version,
            "status": self.status,
            "current_state": self.current_state,
            "data": self.data,
            "output": self.output,
            "error": None if self.error is None else dict(self.error),
            "visits": dict(self.visits),
            "compensable": list(self.compensable),
            "seed": self.seed,
            "started_at": self.started_at,
        }


def _v1_to_v2(doc: dict[str, Any]) -> dict[str, Any]:
    # Version 1 called the compensation stack "completed" and had no seed.
    doc = dict(doc)
    doc["compensable"] = doc.pop("completed", [])
    doc.setdefault("seed", "")
    doc["schema_version"] = 2
    return doc


_V2_STATUSES = {"terminated": "completed", "continued": "running"}


def _v2_to_v3(doc: dict[str, Any]) -> dict[str, Any]:
    # Version 2 reported run outcomes (terminated, continued), not instance statuses.
    doc = dict(doc)
    status = doc.get("status")
    doc["status"] = _V2_STATUSES.get(status, status) if isinstance(status, str) else status
    doc["schema_version"] = 3
    return doc


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2, 2: _v2_to_v3}
"""``version -> function`` upgrading a document of that version by one step."""


def from_json(doc: Mapping[str, Any]) -> InstanceState:
    """Read an :class:`InstanceState` written by any known schema version.

    Raises:
        ValueError: Unknown ``schema_version`` or a missing field (named).
    """
    current = dict(doc)
    version = current.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION or version < 1:
        raise ValueError(f"instance state: unknown schema_version {version!r}")
    while version < SCHEMA_VERSION:
        current = MIGRATIONS[version](current)
        version = current["schema_version"]
    for name in ("instance_id", "workflow_id", "status"):
        if name not in current:
            raise ValueError(f"instance state: missing field {name!r}")
    try:
        status = InstanceStatus(current["status"])
    except ValueError:
        raise ValueError(f"instance state: unknown status {current['status']!r}") from None
    return InstanceState(
        instance_id=str(current["instance_id"]),
        workflow_id=str(current["workflow_id"]),
        workflow_version=current.get("workflow_version"),
        status=status,
        current_state=current.get("current_state"),
        data=current.get("data"),
        output=current.get("output"),
        error=current.get("error"),
        visits=MappingProxyType(dict(current.get("visits") or {})),
        compensable=tuple(current.get("compensable") or ()),
        seed=str(current.get("seed") or ""),
        started_at=current.get("started_at"),
    )
