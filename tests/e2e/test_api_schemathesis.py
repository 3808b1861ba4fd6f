"""Schemathesis against a real ``tideflow serve``: every operation of ``specs/openapi.json``.

One server, with its own database and home, is seeded with a workflow that
ends at once and one that sleeps, an instance of each, a bus, a subscription,
an event held for later and a spare token; their ids are offered to the
generator beside its own values (schemathesis dictionaries), so that
operations on ``{workflow_id}``, ``{instance_id}``, … reach real resources as
well as missing ones. Every operation in the document is tested -- a new
route is covered as soon as the document has it -- in the examples, coverage
and fuzzing phases, with the first admin token. Each answer must be no 5xx,
a documented status, a documented content type, and a body matching the
documented schema (``CHECKS``).

A definition documented as YAML text is sent as that text. Two things are
held back so that the run stays short and the server usable: a valid
long-poll ``wait`` is shortened to ``WAIT_SECONDS`` (an invalid one is sent as
generated), and ``DELETE /tokens/{token_id}`` never revokes the token the run
itself uses (it may revoke the spare one).

CI runs ``EXAMPLES`` examples per operation with a fixed seed. A larger run,
by hand::

    TIDEFLOW_SCHEMATHESIS_EXAMPLES=500 TIDEFLOW_SCHEMATHESIS_SEED=7 pytest -p no:cacheprovider \\
        tests/e2e/test_api_schemathesis.py --timeout 1800
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import schemathesis
import yaml
from schemathesis import Case

from tests.support.served import ROOT, Served, copied_database, serve_process
from tideflow.api.routes.events import MAX_WAIT_SECONDS as EVENTS_MAX_WAIT
from tideflow.api.routes.instances import MAX_WAIT_SECONDS as INSTANCES_MAX_WAIT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SPEC = ROOT / "specs" / "openapi.json"
EXAMPLES = int(os.environ.get("TIDEFLOW_SCHEMATHESIS_EXAMPLES", "25"))
SEED = int(os.environ.get("TIDEFLOW_SCHEMATHESIS_SEED", "20261206"))
WAIT_SECONDS = 0.2
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
]
HELLO = (ROOT / "examples" / "workflows" / "hello-world.yaml").read_text()
SLEEPER = """\
id: fuzz-sleeper
version: '1.0'
specVersion: '0.8'
start: Nap
states:
  - name: Nap
    type: sleep
    duration: PT1H
    end: true
"""


@pytest.fixture(scope="module")
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    """A database of its own: state-changing operations leave junk behind."""
    name = f"t_{_db_names[0]}_schemathesis"
    async with copied_database(pg_server_url, pg_template, name) as url:
        yield url


@pytest.fixture(scope="module")
def server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_process(database, tmp_path_factory.mktemp("schemathesis")) as running:
        yield running


def _created(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201, 202), response.text
    return response.json()


KINDS = {
    "workflow_id": 2,
    "version": 1,
    "instance_id": 2,
    "bus": 2,
    "offset": 1,
    "timer_id": 1,
    "subscription_id": 1,
    "token_id": 1,
}
"""The path parameters offered seeded resources, and how many of each are seeded."""


def placeholder(name: str, index: int) -> str:
    """What the generator is offered for seeded resource ``index`` of ``name``."""
    return f"seeded.{name}.{index}"  # unreserved characters: sent as they are


CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "cache": {"enabled": False},
        "request-timeout": 30,
        "generation": {"max-examples": EXAMPLES, "database": "none"},
        "phases": {"stateful": {"enabled": False}},
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        "dictionaries": {
            name: {"values": [placeholder(name, i) for i in range(count)]}
            for name, count in KINDS.items()
        },
        "parameters": {f"path.{name}": {"dictionary": name, "probability": 0.5} for name in KINDS},
    }
)
schema = schemathesis.openapi.from_path(SPEC, config=CONFIG)


@schemathesis.serializer("application/yaml", "text/yaml", "application/x-yaml")
def yaml_text(context: schemathesis.SerializationContext, value: Any) -> bytes:
    """A definition is documented as a string, its YAML text: sent as it is (schemathesis
    would write the string as a YAML scalar); any other value is written as YAML."""
    if isinstance(value, str):
        return value.encode()
    try:
        return yaml.safe_dump(value).encode()
    except yaml.YAMLError:
        return str(value).encode()


@schemathesis.serializer("application/zip")
def zip_bytes(context: schemathesis.SerializationContext, value: Any) -> bytes:
    """A bundle is documented as binary: the generated bytes are sent as they are (most are
    no zip at all, which the server must answer with a 422 naming the bundle, never a 5xx;
    real bundles are tested in tests/e2e/test_deploy_bundle_served.py)."""
    if isinstance(value, bytes):
        return value
    return str(value).encode()


@pytest.fixture(scope="module")
def seeded(server: Served) -> dict[str, str]:
    """One resource of each kind, made once: each placeholder and the real id it stands for."""
    yaml = {"content-type": "application/yaml"}
    ce = {"content-type": "application/cloudevents+json"}
    with server.client() as http:
        for text in (HELLO, SLEEPER):
            _created(http.post("/workflows", content=text, headers=yaml))
        instances = [
            _created(http.post(f"/workflows/{wid}/instances", json={"name": "fuzz"}))["id"]
            for wid in ("hello-world", "fuzz-sleeper")
        ]
        _created(http.post("/buses", json={"name": "fuzz-bus"}))
        event = {"specversion": "1.0", "id": "seed-1", "source": "/fuzz", "type": "fuzz.seed"}
        _created(http.post("/buses/fuzz-bus/events", json=event, headers=ce))
        later = {**event, "id": "seed-2", "delay": "P1D"}
        held = _created(http.post("/buses/fuzz-bus/events", json=later, headers=ce))
        spec = {"bus": "fuzz-bus", "sink": "http://127.0.0.1:9/never"}
        subscription = _created(http.post("/subscriptions", json=spec))["id"]
        spare = _created(http.post("/tokens", json={"name": "spare", "scopes": ["read"]}))["id"]
    ids: dict[str, list[str]] = {
        "workflow_id": ["hello-world", "fuzz-sleeper"],
        "version": ["1.0"],
        "instance_id": instances,
        "bus": ["default", "fuzz-bus"],
        "offset": ["1"],
        "timer_id": [held["events"][0]["timerId"]],
        "subscription_id": [subscription],
        "token_id": [spare],
    }
    assert {name: len(values) for name, values in ids.items()} == KINDS
    return {placeholder(name, i): v for name, values in ids.items() for i, v in enumerate(values)}


def hold_back(case: Case[Any], server: Served, seeded: dict[str, str]) -> None:
    """Put the seeded ids in; shorten a valid long-poll wait; keep the run's own token."""
    parameters = case.path_parameters or {}
    for name, value in parameters.items():
        if isinstance(value, str) and value in seeded:
            parameters[name] = seeded[value]
    wait = (case.query or {}).get("wait")
    limit = EVENTS_MAX_WAIT if case.path.startswith("/buses") else INSTANCES_MAX_WAIT
    if isinstance(wait, int | float) and WAIT_SECONDS < wait <= limit:
        case.query["wait"] = WAIT_SECONDS
    own = server.token.split("_")[1]
    if case.method == "DELETE" and parameters.get("token_id") == own:
        parameters["token_id"] = "not-" + own


@schema.parametrize()
def test_every_answer_matches_the_document(
    case: Case[Any], server: Served, seeded: dict[str, str]
) -> None:
    hold_back(case, server, seeded)
    response = case.call(base_url=server.url, headers=server.auth)
    case.validate_response(response, headers=server.auth)


def test_the_server_logged_no_unhandled_error(server: Served) -> None:
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
    output = server.output()
    assert "Traceback" not in output, output[-3000:]
