"""A sink created through the API takes every event appended after the call, even in a
cluster where another process (or this one, later) will deliver them: its subscription's
position is fixed when the connector is created, not when a process first attaches it.

Before this, the subscription was made by the first attach, at the bus head *then*: the
events posted between the create call and the cluster's plan were skipped (a CI failure of
the email sink test).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from tideflow.connectors.gateway import PostgresConnectors
from tideflow.connectors.service import ConnectorService, subscription_id
from tideflow.eventstore.gateway import PostgresEventStore
from tideflow.triggers.dispatcher import Dispatcher
from tideflow.triggers.gateway import PostgresSubscriptions


class _NotYetPlanned:
    """A cluster member that owns nothing yet (the plan has not run)."""

    standalone = False

    def owns(self, unit: str) -> bool:
        return False

    def token(self, unit: str) -> int | None:
        return None

    def elsewhere(self, unit: str) -> bool:
        return False

    def changed(self) -> None:
        return None


def _event(n: int) -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"e-{n}", "source": "/t", "type": "t", "data": {"n": n}}


async def test_a_sink_created_before_any_process_runs_it_keeps_the_events_after_the_call(
    pool: asyncpg.Pool,
) -> None:
    async with PostgresEventStore(pool) as store:
        await store.create_bus("orders")
        await store.append("orders", [_event(1)])  # before the connector: not its business
        async with Dispatcher(
            store, PostgresSubscriptions(pool), ownership=_NotYetPlanned()
        ) as dispatcher:
            service = ConnectorService(PostgresConnectors(pool), store, dispatcher)
            await service.create({
                "name": "mail", "kind": "sink", "type": "smtp", "bus": "orders",
                "config": {"url": "smtp://127.0.0.1:1", "from": "a@example.com",
                           "to": ["b@example.com"]},
                "mapping": "{subject: .type, text: .data}",
            })  # fmt: skip
            await store.append("orders", [_event(2), _event(3)])

            sub, head = await dispatcher.get(subscription_id("mail"))
            assert (sub.committed_offset, head) == (1, 3)  # two events wait for the sink
            assert sub.to_json(head)["lag"] == 2

            await service.delete("mail")
            assert await dispatcher.subscriptions.find(subscription_id("mail")) is None
