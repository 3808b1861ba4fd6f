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
``tests/e2e/test_api_fuzz_served.py`` drives a smaller number of such inputs
through a real server to show the 4xx mapping.

CI runs ``EXAMPLES`` examples per property, derandomized. A larger, random
run by hand::

    TIDEFLOW_FUZZ_EXAMPLES=20000 pytest -p no:cacheprovider tests/unit/test_fuzz_inputs.py \\
        --timeout 3600
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.support.sw1 import example_files
from tests.unit.test_validate_robustness import paths_in
from tideflow.api.errors import tideflow_error_response
from tideflow.deploy import deploy_definition
from tideflow.errors import (
    EventRejected,
    TideflowError,
    WorkflowLoadError,
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
from tideflow.workflow.loader import build_definition, external_references

ROOT = Path(__file__).resolve().parents[2]
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

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63, max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
ATTRIBUTE_VALUES = {
    "specversion": st.sampled_from(["1.0", "0.3", ""]),
    "id": st.text(max_size=10),
    "source": st.sampled_from(["/s", "urn:x", "a b", ""]) | st.text(max_size=10),
    "type": st.text(max_size=10),
    "time": st.sampled_from(
        ["2026-12-06T10:00:00Z", "2026-13-01T00:00:00Z", "0001-01-01T00:00:00+14:00"]
    )
    | st.text(max_size=25),
    "dataschema": st.sampled_from(["http://x/s", "not a uri"]),
    "datacontenttype": st.sampled_from(["application/json", "text/plain"]),
    "deliverytime": st.sampled_from(["9999-12-31T23:59:59Z", "2026-12-06T10:00:00Z"])
    | st.text(max_size=25),
    "delay": st.sampled_from(["PT1S", "-PT1S", "P9999999999Y", "PT1e400S", "P1D"])
    | st.text(max_size=12),
    "data_base64": st.sampled_from(["aGVsbG8=", "!!"]),
    "data": JSON,
}
EXTENSION_NAMES = st.sampled_from(["ext", "traceparent", "partitionkey", "Bad-Name", "data"])


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """A JSON-format event: each attribute a plausible value, a wrong one, or absent."""
    event: dict[str, Any] = {}
    for name, values in ATTRIBUTE_VALUES.items():
        required = name in ("specversion", "id", "source", "type")
        if draw(st.floats(0, 1)) < (0.9 if required else 0.25):
            event[name] = draw(values | JSON) if draw(st.booleans()) else draw(values)
    for name in draw(st.lists(EXTENSION_NAMES | st.text(max_size=6), max_size=2)):
        event[name] = draw(JSON)
    return event


CONTENT_TYPES = st.sampled_from(
    [
        STRUCTURED,
        BATCH,
        f"{STRUCTURED}; charset=latin-1",
        "application/cloudevents+xml",
        "application/json",
        "application/json; charset=utf-8",
        "text/plain; charset=no-such-charset",
        "text/plain; charset=utf-16",
        "application/octet-stream",
        "",
    ]
) | st.text(max_size=30)
HEADER_VALUES = st.binary(max_size=30) | st.sampled_from(
    [b"1.0", b"%C0%A0", b'"quoted \\" value"', b"%FF", b"/s", b"2026-12-06T10:00:00Z"]
)
HEADER_NAMES = st.sampled_from(
    [
        *(b"ce-" + name for name in (b"specversion", b"id", b"source", b"type", b"time")),
        *(b"ce-" + name for name in (b"data", b"datacontenttype", b"deliverytime", b"delay")),
        *(b"ce-Bad", b"ce-", b"x-other"),
    ]
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Headers (ASGI pairs) and a body: random bytes or JSON events, in any content mode."""
    headers = [(name, draw(HEADER_VALUES)) for name in draw(st.lists(HEADER_NAMES, max_size=6))]
    if draw(st.booleans()):
        content_type = draw(CONTENT_TYPES).encode("utf-8", "replace")
        headers.append((draw(st.sampled_from([b"content-type", b"Content-Type"])), content_type))
    body = draw(
        st.binary(max_size=60)
        | events().map(lambda e: json.dumps(e).encode())
        | st.lists(events(), max_size=3).map(lambda es: json.dumps(es).encode())
        | JSON.map(lambda v: json.dumps(v).encode())
    )
    if body and draw(st.booleans()):  # damage it: cut, or a byte changed
        at = draw(st.integers(0, len(body) - 1))
        body = body[:at] + draw(st.binary(max_size=2)) + body[at + 1 :]
    return headers, body


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


def _seeds() -> list[dict[str, Any]]:
    paths = sorted((ROOT / "examples" / "workflows").glob("*.yaml"))
    paths += sorted((ROOT / "examples" / "mixed").glob("*.yaml")) + example_files()
    seeds = [yaml.safe_load(path.read_text()) for path in paths]
    # no deploy-time fetches: a unit test does no I/O
    return [seed for seed in seeds if not any(r.remote for r in external_references(seed))]


SEEDS = _seeds()
YAML_SPECIALS = st.sampled_from(
    ["!!binary aGVsbG8=", "!!set {a: null}", "!!omap [a: 1]"]
) | st.sampled_from(
    [
        "2020-01-01",
        "2020-01-01T10:00:00Z",
        ".nan",
        "-.inf",
        "123456789012345678901234567890",
        "0x1F",
        "'\\0'",
        '"\\0"',
        "&anchor [1, *anchor]",
        "{? [1, 2] : x}",
        "${ .a }",
        "'${ def f: f; f }'",
        "'* * * * *'",
        "'not a cron'",
        "{cron: {expression: '61 * * * *'}}",
        "P1Y",
        "PT-1S",
    ]
)


def _put(document: Any, path: tuple[Any, ...], value: Any) -> None:
    target = document
    for part in path[:-1]:
        target = target[part]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value


_DELETE = object()


NEW_KEYS = st.sampled_from(["metadata", "data", "x", "input", "output"]) | st.text(max_size=6)


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        document = document[part]
    return document


@st.composite
def edit(draw: st.DrawFn, document: Any, marks: dict[str, str]) -> None:
    """Replace, delete or add one value of ``document``: JSON, or a YAML-only value (put in
    as a placeholder, written out as YAML). Added keys go into objects, free-form ones (data,
    metadata) among them, where validation looks at nothing."""
    places = paths_in(document)
    kind = draw(st.sampled_from(["json", "yaml", "delete", "add"]))
    if kind == "add":
        objects = [p for p in places if isinstance(_at(document, p), dict)]
        path = (*draw(st.sampled_from(objects)), draw(NEW_KEYS))
    elif len(places) > 1:
        path = draw(st.sampled_from(places[1:]))
    else:
        return
    value: Any = _DELETE if kind == "delete" else draw(JSON)
    if kind in ("yaml", "add") and draw(st.booleans()):
        value = f"@mark{len(marks)}@"
        marks[value] = draw(YAML_SPECIALS)
    with contextlib.suppress(KeyError, IndexError, TypeError):  # not a place after all
        _put(document, path, value)


@st.composite
def definitions(draw: st.DrawFn) -> str:
    """A seed definition with up to three edits, as JSON or YAML text (maybe damaged)."""
    document = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    marks: dict[str, str] = {}
    for _ in range(draw(st.integers(0, 3))):
        draw(edit(document, marks))
    if not marks and draw(st.booleans()):
        text = json.dumps(document)
    else:
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
        for mark, special in marks.items():
            text = text.replace(f"'{mark}'", special).replace(mark, special)
    if draw(st.integers(0, 4)) == 0:  # damage the text itself
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(max_size=4)) + text[at + draw(st.integers(0, 8)) :]
    return text


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
    except (WorkflowLoadError, WorkflowValidationError, TideflowError) as exc:
        refused_as_4xx(exc)
        return
    stored = registry.kept[deployed.version.workflow_id]
    assert callable(compile_stored(stored, dialect))


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
