"""The audit trail: who did what to the server's resources, as CloudEvents on ``tideflow.audit``.

Every deploy and delete of a workflow, every cancel, suspend and resume of an
instance, every subscription and bus created or deleted, every token made or
revoked (and every secret granted or revoked) is appended to the protected bus
:data:`~tideflow.auth.scopes.AUDIT_BUS` after the change is made. Only the
server writes that bus, only ``admin`` reads it, and nobody deletes it.

An entry names its actor by the token's public id and name -- never the
token's text -- and its target by the resource's API path
(``/workflows/orders``). Its ``detail`` must not hold a secret value: callers
pass ids and names only.

:func:`audit_event` is pure; :class:`AuditTrail` appends. A failed append is
logged as an error and not raised: the change it records has already been
made, and refusing the answer would tell the caller it was not.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol

from tideflow import ids
from tideflow.auth.scopes import AUDIT_BUS
from tideflow.auth.tokens import Principal
from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.errors import AlreadyExists, TideflowError
from tideflow.isotime import format_timestamp

log = logging.getLogger("tideflow.audit")

EVENT_TYPE_PREFIX: Final = "io.tideflow.audit."
SOURCE: Final = "/tideflow/audit"
_ACTION: Final = re.compile(r"^[a-z]+(?:\.[a-z]+)+$")
SERVER: Final = Principal(None, "tideflow serve", ())
"""The actor of what the server does by itself (the first admin token of an installation)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One change to the server's resources, and who made it.

    Attributes:
        id: The entry's (and its event's) id.
        action: What was done, ``<resource>.<past tense>``: ``workflow.deployed``.
        actor: Who did it.
        target: The resource's API path: ``/workflows/orders``.
        at: When.
        detail: Ids and names that say more (never a secret value).
    """

    id: str
    action: str
    actor: Principal
    target: str
    at: datetime
    detail: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _ACTION.fullmatch(self.action):
            raise ValueError(f"audit action {self.action!r} is not '<resource>.<verb>'")


def actor_json(actor: Principal) -> dict[str, Any]:
    """Who acted, as an audit event shows it: the token's id and name, never its text."""
    return {"tokenId": actor.token_id, "name": actor.name}


def audit_event(entry: AuditEntry) -> dict[str, Any]:
    """The structured CloudEvent of ``entry``: type ``io.tideflow.audit.<action>``."""
    return {
        "specversion": "1.0",
        "id": entry.id,
        "source": SOURCE,
        "type": EVENT_TYPE_PREFIX + entry.action,
        "subject": entry.target,
        "time": format_timestamp(entry.at),
        "datacontenttype": "application/json",
        "data": {
            **entry.detail,
            "action": entry.action,
            "target": entry.target,
            "actor": actor_json(entry.actor),
        },
    }


class _Appender(Protocol):
    async def create_bus(self, name: str) -> Any: ...

    async def append(self, bus: str, events: Sequence[Mapping[str, Any]]) -> Any: ...


class AuditTrail:
    """Appends audit entries to :data:`~tideflow.auth.scopes.AUDIT_BUS`.

    Args:
        store: The event store (anything with ``create_bus`` and ``append``).
        clock: When entries happen.
    """

    def __init__(self, store: _Appender, clock: Clock = SYSTEM_CLOCK) -> None:
        self.store = store
        self.clock = clock
        self.bus = AUDIT_BUS

    async def start(self) -> None:
        """Create the bus unless it exists."""
        with contextlib.suppress(AlreadyExists):
            await self.store.create_bus(self.bus)

    async def record(self, actor: Principal, action: str, target: str, **detail: Any) -> None:
        """Append one entry (after the change it records is made).

        Args:
            actor: Who made the change (the request's principal).
            action: ``<resource>.<past tense>``, e.g. ``secret.granted``.
            target: The resource's API path, e.g. ``/secrets/API_KEY``.
            **detail: Ids and names that say more -- never a secret value.
        """
        entry = AuditEntry(
            id=ids.new_id(),
            action=action,
            actor=actor,
            target=target,
            at=self.clock.now(),
            detail=detail,
        )
        try:
            await self.store.append(self.bus, [audit_event(entry)])
        except TideflowError as exc:
            log.error(
                "audit entry lost: %s %s by token %s (%s): %s",
                action,
                target,
                actor.token_id,
                actor.name,
                exc,
            )
