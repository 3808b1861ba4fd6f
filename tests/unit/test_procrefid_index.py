"""Which events the subscriber's index treats as addressed by ``kogitoprocrefid`` (S21)."""

from __future__ import annotations

import json

from tests.integration.test_correlation_procrefid import waiting_for
from tideflow.triggers.workflow_events import SubscriberIndex, compile_workflow
from tideflow.workflow.loader import load_workflow


def _index() -> SubscriberIndex:
    index = SubscriberIndex()
    for doc, dialect in (
        (waiting_for("sf", "t.sf"), "sonataflow"),
        (waiting_for("st", "t.st"), None),
    ):
        workflow = load_workflow(json.dumps(doc), local_files=False, dialect=dialect)
        index.put(doc["id"], compile_workflow(workflow, "1", sonataflow=dialect is not None))
    return index


def test_only_types_a_sonataflow_workflow_consumes_are_addressed() -> None:
    index = _index()
    assert index.addressed_to({"type": "t.sf", "kogitoprocrefid": "i-1"}) == "i-1"
    assert index.addressed_to({"type": "t.st", "kogitoprocrefid": "i-1"}) is None  # strict
    assert index.addressed_to({"type": "t.sf"}) is None
    assert index.addressed_to({"type": "t.sf", "kogitoprocrefid": ""}) is None
    assert index.addressed_to({"type": "t.sf", "kogitoprocrefid": 7}) is None
    assert (index.is_sonataflow("sf"), index.is_sonataflow("st")) == (True, False)
    index.put("sf", None)  # deleted: nothing is addressed any more
    assert index.addressed_to({"type": "t.sf", "kogitoprocrefid": "i-1"}) is None
