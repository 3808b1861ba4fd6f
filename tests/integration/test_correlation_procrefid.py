"""SonataFlow's ``kogitoprocrefid`` in the workflow subscriber, on real PostgreSQL.

Under the SonataFlow dialect an event naming an instance in ``kogitoprocrefid``
is that instance's only (docs/spec-coverage.md, S21): when the instance waits
for no event of its type, SonataFlow signals it in vain and the event is lost
-- neither kept nor given to another instance. An id that names no instance of
a SonataFlow-dialect workflow leaves the event to the ordinary matching.
(The served test, tests/e2e/test_sonataflow_procrefid_served.py, has two
instances waiting for the same type.)
"""

from __future__ import annotations

import json
from typing import Any

from tests.integration.test_correlation import running, started_by
from tideflow.eventstore.store import DEFAULT_BUS

SONATAFLOW = "application/json; dialect=sonataflow"
PENDING = "SELECT count(*) FROM tideflow_correlation_pending"
WAITING = "SELECT count(*) FROM tideflow_correlation_keys WHERE event_type = $1"


def waiting_for(workflow_id: str, event_type: str) -> dict[str, Any]:
    """A workflow (no event start) whose instances wait for one uncorrelated ``event_type``
    (source ``/t``); its output is ``.go``."""
    doc = started_by(workflow_id, event_type)
    doc["start"] = "Begin"
    doc["states"].insert(0, {"name": "Begin", "type": "inject", "data": {}, "transition": "Wait"})
    return doc


def answer(event_type: str, event_id: str, refid: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "/t",
        "type": event_type,
        "kogitoprocrefid": refid,
        "data": {"from": event_id},
    }


async def test_an_event_for_an_instance_not_waiting_for_it_is_lost_unknown_ids_go_on(
    pg_url: str,
) -> None:
    async with running(pg_url) as system:
        for doc in (waiting_for("wants-t", "test.t"), waiting_for("wants-u", "test.u")):
            await system.registry.deploy(doc["id"], "1", json.dumps(doc), SONATAFLOW, doc)
        waiting = await system.runtime.start_instance("wants-t", {})
        other = await system.runtime.start_instance("wants-u", {})
        assert await system.until(WAITING, 1, "test.t") == 1
        assert await system.until(WAITING, 1, "test.u") == 1
        # Addressed to the instance that waits for test.u only: lost, not the other's.
        await system.store.append(DEFAULT_BUS, [answer("test.t", "to-other", other.id)])
        # An id of no instance: the ordinary matching (uncorrelated: the waiting one).
        await system.store.append(DEFAULT_BUS, [answer("test.t", "to-nobody", "no-such-id")])
        done = await system.runtime.wait_for_completion(waiting.id, 60)
        assert (done.status, done.output) == ("completed", {"go": {"from": "to-nobody"}})
        assert await system.count(PENDING) == 0  # the lost event was not kept either
        still = "SELECT count(*) FROM tideflow_instances WHERE id = $1 AND status = 'waiting'"
        assert await system.count(still, other.id) == 1
