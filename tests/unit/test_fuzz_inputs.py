"""Fuzz tests (hypothesis) of the CloudEvents decoder and the workflow loader.

Property: for arbitrary bytes, headers, JSON and YAML, each either gives a
value or raises one of the project's own errors that the API maps to a 4xx
(checked through :func:`tideflow.api.errors.tideflow_error_response`) --
never anything else, which the API would answer 500. And what is accepted
can be stored: an event's stored text reads back as the same event; a
deployed definition's stored JSON loads again into a runnable interpreter, as
the durable host loads it.

- the decoder: :func:`tideflow.http_binding.decode_request` (every content
  mode), then what ingestion does with each event: the delayed-delivery
  attributes (:func:`tideflow.timer.delayed.delivery_time`) and the event
  store's encoding (:func:`tideflow.eventstore.codec.encode_event`);
- the loader: :func:`tideflow.deploy.deploy_definition` (parse, DSL 0.8 or
  1.0, dialect, references, id, start schedule) into a registry that keeps
  what PostgreSQL would (``rows.dumps``/``loads``), then the stored version
  loaded and compiled again (0.8 ``Interpreter``, 1.0 ``Interpreter1``).

Inputs are random bytes and text, JSON values shaped like events, and valid
definitions (the examples, the DSL 1.0 corpus when present) damaged by random
edits and rendered as JSON or as YAML (with YAML's own tags and aliases).
The strategies are in :mod:`tests.support.fuzzing`;
``tests/e2e/test_api_fuzz_served.py`` drives a smaller number of such inputs
through a real server to show the 4xx mapping.

CI runs ``EXAMPLES`` examples per property, derandomized. A larger, random
run by hand::

    TIDEFLOW_FUZZ_EXAMPLES=20000 pytest -p no:cacheprovider tests/unit/test_fuzz_inputs.py \\
        --timeout 3600
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.support.fuzzing import SEEDS, definitions, events, requests
from tideflow.api.errors import tideflow_error_response
from tideflow.deploy import deploy_definition
from tideflow.errors import (
    EventRejected,
    TideflowError,
    WorkflowNotFound,
    WorkflowValidationError,
)
from tideflow.eventstore.codec import decode_event, encode_event
from tideflow.http_binding import BATCH, STRUCTURED, decode_request
from tideflow.runtime.dsl1 import Interpreter as Interpreter1
from tideflow.runtime.hosts.plumbing import workflow_secrets
from tideflow.runtime.interpreter import Interpreter
from tideflow.runtime.rows import WorkflowVersion, dumps, loads
from tideflow.timer.delayed import delivery_time
from tideflow.workflow.dsl1 import is_dsl1, load_document
from tideflow.workflow.loader import build_definition

EXAMPLES = int(os.environ.get("TIDEFLOW_FUZZ_EXAMPLES", "300"))
BY_HAND = "TIDEFLOW_FUZZ_EXAMPLES" in os.environ
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=not BY_HAND,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],  # no explain: it traces, slowly
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NOW = datetime(2026, 12, 6, tzinfo=UTC)


def refused_as_4xx(exc: TideflowError) -> None:
    """The error is one the API answers with a 4xx problem."""
    response = tideflow_error_response(exc)
    assert 400 <= response.status_code < 500, (response.status_code, exc)
    assert exc.message, exc


# --- the CloudEvents decoder ------------------------------------------------------------


@FUZZ
@given(requests())
def test_the_decoder_gives_events_or_a_4xx(
    request: tuple[list[tuple[bytes, bytes]], bytes],
) -> None:
    headers, body = request
    try:
        decoded = decode_request(headers, body)
    except EventRejected as exc:
        refused_as_4xx(exc)
        return
    for index, event in enumerate(decoded):
        try:
            delivery_time(event, NOW)
            stored = encode_event(event, index)
        except EventRejected as exc:
            refused_as_4xx(exc)
            continue
        assert decode_event(stored[3]) == event  # what is acknowledged is what is kept


@settings(FUZZ, max_examples=max(EXAMPLES // 3, 1))  # each example decodes up to four bodies
@given(st.lists(events(), max_size=3))
def test_structured_and_batched_events_are_decoded_or_refused(batch: list[dict[str, Any]]) -> None:
    for content_type, body in [(BATCH, batch)] + [(STRUCTURED, one) for one in batch]:
        text = json.dumps(body).encode()
        try:
            decoded = decode_request([(b"content-type", content_type.encode())], text)
        except EventRejected as exc:
            refused_as_4xx(exc)
            continue
        for index, event in enumerate(decoded):
            assert {"specversion", "id", "source", "type"} <= set(event)
            try:
                encode_event(event, index)
            except EventRejected as exc:
                refused_as_4xx(exc)


# --- the workflow loader ------------------------------------------------------------------


class KeptVersions:
    """A registry that keeps a version as PostgreSQL would (JSON text), for the loader."""

    def __init__(self) -> None:
        self.kept: dict[str, WorkflowVersion] = {}

    async def get(self, workflow_id: str, version: str | None = None) -> WorkflowVersion:
        if workflow_id not in self.kept:
            raise WorkflowNotFound(f"workflow {workflow_id!r} is not deployed")
        return self.kept[workflow_id]

    async def deploy(
        self,
        workflow_id: str,
        version: str | None,
        source_text: str,
        content_type: str,
        definition_json: Any,
        resolved: Any = None,
    ) -> WorkflowVersion:
        stored = WorkflowVersion(
            workflow_id=workflow_id,
            version=version or "1",
            seq=1,
            source_text=source_text,
            content_type=content_type,
            definition=loads(dumps(definition_json)),
            resolved=None if resolved is None else loads(dumps(resolved)),
            created_at=NOW,
        )
        self.kept[workflow_id] = stored
        return stored


def compile_stored(stored: WorkflowVersion, dialect: str | None) -> Callable[..., Any]:
    """The stored version loaded as the durable host loads it: its interpreter's ``run``."""
    if is_dsl1(stored.definition):
        model, _ = load_document(stored.definition, source="stored", processes=False)
        return Interpreter1(model, secrets=workflow_secrets(model)).run
    assert stored.resolved is not None
    workflow = build_definition(stored.resolved, source="stored", dialect=dialect).workflow
    return Interpreter(workflow, secrets=workflow_secrets(workflow), dialect=dialect).run


@settings(FUZZ, max_examples=EXAMPLES * 3)  # cheap, and most damaged definitions are invalid
@given(
    text=st.one_of(definitions(), definitions(), definitions(), st.text(max_size=80)),
    dialect=st.sampled_from([None, "sonataflow"]),
)
async def test_the_loader_deploys_a_runnable_definition_or_gives_a_4xx(
    text: str, dialect: str | None
) -> None:
    registry = KeptVersions()
    media = "application/json" if text.lstrip().startswith("{") else "application/yaml"
    try:
        deployed = await deploy_definition(registry, text, media, dialect=dialect)  # type: ignore[arg-type]
    except TideflowError as exc:  # WorkflowLoadError, WorkflowValidationError, ...
        refused_as_4xx(exc)
        return
    stored = registry.kept[deployed.version.workflow_id]
    assert stored.source_text == text
    compile_stored(stored, dialect)  # raises if what was stored no longer loads


async def test_the_seeds_deploy_as_they_are() -> None:
    """The damaged definitions start from valid ones (else the property tests little)."""
    deployed = []
    for seed in SEEDS:
        registry = KeptVersions()
        with contextlib.suppress(WorkflowValidationError):  # a corpus example Tideflow refuses
            await deploy_definition(registry, json.dumps(seed), "application/json")  # type: ignore[arg-type]
            deployed.append(seed)
    assert len(deployed) >= 20
    assert any(is_dsl1(seed) for seed in deployed)
