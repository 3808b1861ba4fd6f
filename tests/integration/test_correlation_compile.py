"""What deployed spec examples subscribe to (pure: ``tideflow.triggers.workflow_events``).

No database here: these check the compiled start specs, correlation shapes
and event matching that the correlation tests and the end-to-end examples
rely on.
"""

from __future__ import annotations

from tests.support.conformance import SW08_EXAMPLES, needs
from tideflow.triggers.workflow_events import (
    SubscriberIndex,
    WorkflowEvents,
    attribute_text,
    compile_workflow,
    correlation_key,
)
from tideflow.workflow.loader import load_workflow

SPEC = SW08_EXAMPLES

pytestmark = needs(SPEC)


def compiled(name: str) -> WorkflowEvents:
    workflow = load_workflow((SPEC / name).read_text(), local_files=False)
    return compile_workflow(workflow, "1.0")


def test_an_exclusive_start_lists_every_event_of_the_start_state() -> None:
    events = compiled("patientVitalsWorkflow.yaml")
    assert events.start is not None
    assert events.start.exclusive
    assert events.start.wait_key == "MonitorVitals/events"
    assert [m.name for m in events.start.events] == [
        "HighBodyTemperature",
        "HighBloodPressure",
        "HighRespirationRate",
    ]
    # Start events are not kept for later waits.
    assert events.kept == frozenset()


def test_a_non_exclusive_start_groups_by_every_correlation_attribute() -> None:
    events = compiled("finalizeCollegeApplication.yaml")
    assert events.start is not None
    assert not events.start.exclusive
    sat = {"type": "org.application.satscores", "source": "applicationsource", "applicantid": "A"}
    assert events.start.group_key(sat) == {"applicantId": "A"}


def test_a_callback_workflow_has_no_start_but_keeps_its_callback_events() -> None:
    text = (SPEC / "customercreditcheck.yaml").read_text()
    text = text.replace("callCreditCheckMicroservice", "creditCheckFunction")
    events = compile_workflow(load_workflow(text, local_files=False), "1.0")
    assert events.start is None
    assert events.kept == frozenset({"creditCheckCompleteType"})
    # Unbound waits are indexed without the attribute: both shapes are looked up.
    assert {s.names for s in events.shapes} == {(), ("customerId",)}


def test_the_index_finds_keys_starts_and_aliases() -> None:
    index = SubscriberIndex()
    index.put("patientVitalsWorkflow", compiled("patientVitalsWorkflow.yaml"))
    event = {"type": "org.monitor.highBodyTemp", "source": "monitoringSource", "patientid": "P1"}
    assert sorted(index.keys(event), key=lambda k: len(k[1])) == [
        ("org.monitor.highBodyTemp", {}),
        ("org.monitor.highBodyTemp", {"patientId": "P1"}),
    ]
    assert [s.workflow_id for s in index.starting(event)] == ["patientVitalsWorkflow"]
    assert index.starting({**event, "source": "elsewhere"}) == []
    assert index.aliased(event)["patientId"] == "P1"
    index.put("patientVitalsWorkflow", None)
    assert index.starting(event) == []
    assert index.keys(event) == []


def test_correlation_values_compare_as_text() -> None:
    assert correlation_key(["n"], {"n": 42}) == {"n": "42"}
    assert correlation_key(["n", "m"], {"n": 1}) is None
    assert attribute_text(True) == "true"
    assert attribute_text("x") == "x"
