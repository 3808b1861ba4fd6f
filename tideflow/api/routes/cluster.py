"""``GET /cluster``: the processes sharing this database, what each owns, the lag per unit.

Read fresh from the cluster tables (any process answers the same); the lag of a
subscription's unit is its bus's head minus its committed offset, a connector's
that of its sink's subscription (``null`` for a source).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends
from starlette.exceptions import HTTPException

from tideflow.api.access import requires
from tideflow.api.schemas import Problem
from tideflow.api.services import Services, get_services
from tideflow.auth.scopes import ADMIN
from tideflow.connectors.service import SUBSCRIPTION_PREFIX
from tideflow.connectors.service import UNIT_PREFIX as CONNECTOR_UNIT
from tideflow.isotime import format_timestamp

if TYPE_CHECKING:
    from tideflow.triggers.dispatcher import Dispatcher

router = APIRouter(tags=["cluster"])


@router.get(
    "/cluster",
    summary="The processes sharing the database and what each owns",
    dependencies=[requires(ADMIN)],
    responses={503: {"model": Problem, "description": "This server runs without a cluster."}},
)
async def get_cluster(services: Annotated[Services, Depends(get_services)]) -> dict[str, Any]:
    """Each live process (id, address, heartbeat) with its units (lease token, since when,
    lag), and the units nobody owns right now."""
    cluster = services.cluster
    if cluster is None:
        raise HTTPException(503, "this server runs without a cluster")
    view = await cluster.gateway.view()
    lags = await _lags(services.dispatcher)
    owned: dict[str, list[dict[str, Any]]] = {node.node_id: [] for node in view.nodes}
    for lease in view.leases:
        owned.setdefault(lease.owner, []).append(
            {
                "unit": lease.unit,
                "token": lease.token,
                "since": format_timestamp(lease.acquired_at),
                "lag": lags.get(lease.unit),
            }
        )
    nodes = [
        {
            "id": node.node_id,
            "address": node.address,
            "self": node.node_id == cluster.node_id,
            "startedAt": format_timestamp(node.started_at),
            "heartbeatAt": format_timestamp(node.heartbeat_at),
            "units": owned.get(node.node_id, []),
        }
        for node in view.nodes
    ]
    held = {lease.unit for lease in view.leases}
    unowned = [{"unit": u, "lag": lags.get(u)} for u in sorted(cluster.units - held)]
    return {"node": cluster.node_id, "nodes": nodes, "unowned": unowned}


async def _lags(dispatcher: Dispatcher | None) -> dict[str, int | None]:
    """``unit -> lag`` of every subscription's unit (and every sink connector's)."""
    if dispatcher is None:
        return {}
    lags: dict[str, int | None] = {}
    for sub, head in await dispatcher.list_all():
        lag = None if head is None else max(0, head - sub.committed_offset)
        if sub.id.startswith(SUBSCRIPTION_PREFIX):
            lags[CONNECTOR_UNIT + sub.id.removeprefix(SUBSCRIPTION_PREFIX)] = lag
        else:
            lags[dispatcher.unit(sub.id)] = lag
    return lags
