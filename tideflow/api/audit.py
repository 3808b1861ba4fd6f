"""One call for a route to put a change on the audit trail: :func:`record`.

The actor is the request's principal (put there by the access gate); the
trail is the app's :class:`~tideflow.auth.audit.AuditTrail` (none on a
server opened without one, where :func:`record` does nothing).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from tideflow.api.access import principal_of


async def record(request: Request, action: str, target: str, **detail: Any) -> None:
    """Append an audit entry for a change this request has just made.

    Args:
        request: The request that made it (its principal is the actor).
        action: ``<resource>.<past tense>``: ``workflow.deployed``, ``secret.granted``.
        target: The resource's API path: ``/workflows/orders``.
        **detail: Ids and names that say more -- never a secret value.
    """
    trail = request.app.state.services.audit
    if trail is not None:
        await trail.record(principal_of(request.scope), action, target, **detail)
