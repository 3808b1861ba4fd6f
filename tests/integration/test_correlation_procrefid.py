"""SonataFlow's ``kogitoprocrefid`` in the workflow subscriber, on real PostgreSQL.

Under the SonataFlow dialect an event naming an instance in ``kogitoprocrefid``
is that instance's only (docs/spec-coverage.md, S21): when the instance waits
for no event of its type yet -- a callback's answer may come before the
callback's action returned -- it is kept for that instance alone and never
given to another instance. An id that names no instance of a SonataFlow-dialect
workflow leaves the event to the ordinary matching.
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


def waiting_twice(workflow_id: str) -> dict[str, Any]:
    """A workflow whose instances wait for ``test.u``, then for ``test.t`` (both
    uncorrelated, source ``/t``); its output is ``{"u": ..., "t": ...}``."""
    return {
        "id": workflow_id,
        "version": "1",
        "specVersion": "0.8",
        "start": "Begin",
        "events": [
            {"name": "U", "type": "test.u", "source": "/t"},
            {"name": "T", "type": "test.t", "source": "/t"},
        ],
        "states": [
            {"name": "Begin", "type": "inject", "data": {}, "transition": "WaitU"},
            {
                "name": "WaitU",
                "type": "event",
                "onEvents": [{"eventRefs": ["U"], "eventDataFilter": {"toStateData": "${ .u }"}}],
                "transition": "WaitT",
            },
            {
                "name": "WaitT",
                "type": "event",
                "onEvents": [{"eventRefs": ["T"], "eventDataFilter": {"toStateData": "${ .t }"}}],
                "end": True,
            },
        ],
    }


async def test_an_answer_before_its_wait_is_kept_for_its_instance_alone_unknown_ids_go_on(
    pg_url: str,
) -> None:
    async with running(pg_url) as system:
        for doc in (waiting_for("wants-t", "test.t"), waiting_twice("later-t")):
            await system.registry.deploy(doc["id"], "1", json.dumps(doc), SONATAFLOW, doc)
        waiting = await system.runtime.start_instance("wants-t", {})
        later = await system.runtime.start_instance("later-t", {})
        assert await system.until(WAITING, 1, "test.t") == 1
        assert await system.until(WAITING, 1, "test.u") == 1
        # For the instance that waits for test.u first: kept for it, not the waiting one's.
        await system.store.append(DEFAULT_BUS, [answer("test.t", "early", later.id)])
        # An id of no instance: the ordinary matching (uncorrelated: the waiting one).
        await system.store.append(DEFAULT_BUS, [answer("test.t", "to-nobody", "no-such-id")])
        done = await system.runtime.wait_for_completion(waiting.id, 60)
        assert (done.status, done.output) == ("completed", {"go": {"from": "to-nobody"}})
        assert await system.until(PENDING, 1) == 1  # the early answer waits for its instance
        # Its instance moves on to wait for test.t: it takes the kept answer.
        await system.store.append(DEFAULT_BUS, [answer("test.u", "first", later.id)])
        finished = await system.runtime.wait_for_completion(later.id, 60)
        assert finished.status == "completed"
        assert finished.output == {"u": {"from": "first"}, "t": {"from": "early"}}
        assert await system.count(PENDING) == 0
