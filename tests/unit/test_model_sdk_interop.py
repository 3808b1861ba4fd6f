"""The ``sdk`` extra: round trips through serverlessworkflow-sdk ``Workflow`` objects."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.support.conformance import SW08_EXAMPLES, absent
from tideflow.errors import ConfigurationError, TideflowError, WorkflowValidationError
from tideflow.workflow import load_file
from tideflow.workflow._build_workflow import workflow as build_workflow
from tideflow.workflow._serialize import to_document
from tideflow.workflow.sdk_interop import from_sdk, to_sdk

EXAMPLES = SW08_EXAMPLES
HAVE_SDK = importlib.util.find_spec("serverlessworkflow") is not None
needs_sdk = pytest.mark.skipif(
    not HAVE_SDK,
    reason="serverlessworkflow-sdk is not installed (the optional 'sdk' extra, Python 3.11 only)",
)


def _examples() -> list[Path]:
    if not EXAMPLES.is_dir():
        return []
    return sorted(
        p
        for p in EXAMPLES.iterdir()
        if p.suffix in (".yaml", ".json")
        and p.name.count(".") == 1
        and p.name != "functiondefs.json"
    )


def _valid_examples() -> list[Path]:
    valid = []
    for path in _examples():
        try:
            load_file(path)
        except WorkflowValidationError:
            continue
        valid.append(path)
    return valid


def test_the_model_round_trips_through_its_document_form() -> None:
    # needs no SDK: this is the half of the interop that Tideflow owns
    examples = _valid_examples()
    if not examples:
        pytest.skip(absent(EXAMPLES))
    for path in examples:
        workflow = load_file(path)
        document = to_document(workflow)
        assert build_workflow(document) == workflow, path.name


@pytest.mark.skipif(HAVE_SDK, reason="checks the message shown when the SDK is absent")
def test_without_the_sdk_the_error_says_how_to_install_it() -> None:
    workflow = load_file(EXAMPLES / "helloworld.yaml") if EXAMPLES.is_dir() else None
    if workflow is None:
        pytest.skip(absent(EXAMPLES))
    with pytest.raises(ConfigurationError, match=r"pip install 'tideflow\[sdk\]'"):
        to_sdk(workflow)


@needs_sdk
def test_spec_examples_the_sdk_can_read_round_trip() -> None:
    round_tripped = 0
    for path in _valid_examples():
        workflow = load_file(path)
        if any(event.correlation for event in workflow.events):
            with pytest.raises(TideflowError, match="correlation list"):
                to_sdk(workflow)
            continue
        sdk_workflow = to_sdk(workflow)
        assert type(sdk_workflow).__module__ == "serverlessworkflow.sdk.workflow"
        assert from_sdk(sdk_workflow) == workflow, path.name
        round_tripped += 1
    assert round_tripped >= 15
