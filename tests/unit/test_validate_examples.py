"""The Serverless Workflow 0.8 spec examples: valid ones load, documented defects are reported.

INDEX.md of the conformance set lists which examples are valid and what is
wrong with the others; each expectation below cites it.
"""

from __future__ import annotations

import pytest

from tests.support.conformance import SW08_EXAMPLES, skip_unless
from tideflow.errors import Problem, WorkflowValidationError, format_path
from tideflow.workflow import load_and_validate, load_file
from tideflow.workflow.model import EventState, SwitchState

EXAMPLES = SW08_EXAMPLES

VALID = [
    "helloworld.yaml",
    "greeting.yaml",
    "eventbasedgreeting.yaml",
    "solvemathproblems.yaml",
    "parallelexec.yaml",
    "sendcustomeremail.yaml",
    "onboardcustomer.yaml",
    "applicantrequest.yaml",
    "provisionorders.yaml",
    "jobmonitoring.yaml",
    "sendcloudeventonprovision.yaml",
    "patientVitalsWorkflow.yaml",
    "finalizeCollegeApplication.yaml",
    "handleCarAuctionBid.yaml",
    "checkInbox.yaml",
    "VetAppointmentWorkflow.yaml",
    "paymentconfirmation.yaml",
    "order.yaml",
    "roomreadings.yaml",
    "checkcarvitals.yaml",
    "fillglassofwater.yaml",
    "foodorderworkflow.yaml",
    "notifycustomerworkflow.yaml",
]

# file -> (path, message fragment) of each documented defect
DEFECTS: dict[str, list[tuple[str, str]]] = {
    "bankingtransactions.yaml": [
        (
            "states[0].actions[1].functionRef",
            "no function named 'Banking Service - Smaller Tx'; "
            "did you mean 'Banking Service - Smaller T'?",
        ),
        ("states[0].iterationParam", "must be a variable name such as 'item', not '${ .tx }'"),
    ],
    "booklending.yaml": [
        ("states[4].eventConditions[1].transition", "no state named 'Cancel Request'"),
        ("states[6].duration", "'PT2W' is not an ISO 8601 duration"),
        ("functions", "cannot read 'file://books/lending/functions.json': no such file"),
        ("events", "cannot read 'file://books/lending/events.json': no such file"),
    ],
    "customercreditcheck.yaml": [
        ("states[0].action.functionRef.refName", "no function named 'callCreditCheckMicroservice'"),
    ],
    "patientonboarding.json": [
        ("states[0].onEvents[0].eventRefs[0]", "no event named 'NewPatientEvent'"),
        (
            "states[0].onEvents[0].actions[0].functionRef",
            "no function named 'StorePatient'; did you mean 'StoreNewPatientInfo'?",
        ),
    ],
    "vitalscheck.yaml": [
        ("states[0].end.produceEvents[0].eventRef", "no event named 'DisplayChecksOnDashboard'"),
        *(
            (f"states[0].actions[{i}].functionRef", f"no function named '{name}'")
            for i, name in enumerate(
                [
                    "Check Tire Pressure",
                    "Check Oil Pressure",
                    "Check Coolant Level",
                    "Check Battery",
                ]
            )
        ),
    ],
    "placeorderworkflow.yaml": [
        ("states[0].onEvents[0].eventRefs[0]", "no event named 'Food Order Event'"),
        (
            "states[0].onEvents[0].actions[0].functionRef.refName",
            "no function named 'Submit Order Function' (the workflow defines no functions)",
        ),
    ],
    "deliverorderworkflow.yaml": [
        ("states[0].actions[0].functionRef", "no function named 'Dispatch Courrier Function'"),
        ("states[1].onEvents[0].eventRefs[0]", "no event named 'Order Picked Up Event'"),
    ],
    "eventbasedswitchstate.json": [
        (
            "states[0].eventTimeout",
            "not a property of a switch state; timeouts belong under 'timeouts' "
            "(timeouts.eventTimeout)",
        ),
    ],
}

CORRELATED = [
    "patientVitalsWorkflow.yaml",
    "finalizeCollegeApplication.yaml",
    "customercreditcheck.yaml",
    "order.yaml",
    "roomreadings.yaml",
]


@pytest.fixture(autouse=True)
def _need_examples() -> None:
    skip_unless(EXAMPLES)


def _rendered(problems: tuple[Problem, ...]) -> list[tuple[str, str, str]]:
    return [(format_path(p.path), p.message, p.severity) for p in problems]


def test_every_workflow_example_is_classified() -> None:
    workflows = {
        p.name
        for p in EXAMPLES.iterdir()
        if p.suffix in (".yaml", ".json")
        and p.name.count(".") == 1
        and p.name not in ("functiondefs.json",)
    }
    assert workflows == set(VALID) | set(DEFECTS)
    assert len(workflows) == 31


@pytest.mark.parametrize("name", VALID)
def test_valid_example_loads_without_errors(name: str) -> None:
    workflow, warnings = load_and_validate(EXAMPLES / name)
    assert workflow.states
    assert workflow.start_state is workflow.state(workflow.start.state_name)
    assert all(w.severity == "warning" for w in warnings)


def test_order_example_reads_pt30d_with_a_warning() -> None:
    workflow, warnings = load_and_validate(EXAMPLES / "order.yaml")
    assert _rendered(warnings) == [
        (
            "timeouts.workflowExecTimeout.duration",
            "'PT30D' puts days after 'T'; read as 'P30D'",
            "warning",
        )
    ]
    timeout = workflow.timeouts.workflow_exec_timeout
    assert timeout is not None
    assert (timeout.duration, timeout.run_before) == ("P30D", "CancelOrder")


@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_documented_defect_is_reported_at_its_path(name: str) -> None:
    with pytest.raises(WorkflowValidationError) as caught:
        load_file(EXAMPLES / name)
    found = _rendered(caught.value.problems)
    for path, fragment in DEFECTS[name]:
        assert any(p == path and fragment in m and s == "error" for p, m, s in found), (
            path,
            fragment,
            found,
        )


@pytest.mark.parametrize("name", CORRELATED)
def test_examples_with_correlation_lists_load(name: str) -> None:
    if name == "customercreditcheck.yaml":  # its dangling functionRef is checked above
        with pytest.raises(WorkflowValidationError) as caught:
            load_file(EXAMPLES / name)
        assert not any("correlation" in format_path(p.path) for p in caught.value.problems)
        return
    workflow = load_file(EXAMPLES / name)
    correlated = [e for e in workflow.events if e.correlation]
    assert correlated
    assert all(c.context_attribute_name for e in correlated for c in e.correlation)


def test_external_function_and_event_files_are_inlined() -> None:
    workflow = load_file(EXAMPLES / "paymentconfirmation.yaml")
    assert workflow.function("sendSuccessEmail").operation
    assert workflow.event("PaymentReceivedEvent").kind == "consumed"
    food = load_file(EXAMPLES / "foodorderworkflow.yaml")  # file:// references
    assert {f.name for f in food.functions} >= {"Submit Order Function"}


def test_event_based_switch_example_is_modelled() -> None:
    workflow = load_file(EXAMPLES / "checkcarvitals.yaml")
    switch = next(s for s in workflow.states if isinstance(s, SwitchState))
    assert switch.is_event_based
    assert switch.default_condition is not None
    assert switch.default_condition.transition is not None
    start = workflow.start_state
    assert isinstance(start, EventState)
