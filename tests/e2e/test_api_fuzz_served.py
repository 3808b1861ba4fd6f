"""The decoder and loader fuzz inputs through a real ``tideflow serve``: a 4xx, never a 5xx.

The same strategies as ``tests/unit/test_fuzz_inputs.py`` (:mod:`tests.support.fuzzing`),
fewer examples, each sent over HTTP with the first admin token:

- a CloudEvents request (any headers and body) to ``POST /events`` or
  ``POST /buses/default/events`` is acknowledged (202, one ack per event) or
  refused with a 4xx problem (``application/problem+json`` with ``type``,
  ``title`` and ``detail``);
- a definition (damaged or not, JSON or YAML, with or without
  ``?dialect=sonataflow``) to ``POST /workflows`` is deployed (201) or refused
  with a 4xx problem; a deployed one starts an instance (201) -- what was
  stored loads again.

The server must log no traceback. A larger run, by hand::

    TIDEFLOW_FUZZ_SERVED_EXAMPLES=500 pytest -p no:cacheprovider \\
        tests/e2e/test_api_fuzz_served.py --timeout 3600
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.support.fuzzing import definitions, requests
from tests.support.served import Served, copied_database, serve_process

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

EXAMPLES = int(os.environ.get("TIDEFLOW_FUZZ_SERVED_EXAMPLES", "40"))
SERVED = settings(
    max_examples=EXAMPLES,
    derandomize="TIDEFLOW_FUZZ_SERVED_EXAMPLES" not in os.environ,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
# What h11 sends in a header value (no control characters but tab).
_SENDABLE = bytes(c for c in range(256) if c == 9 or 0x20 <= c < 0x7F or c >= 0x80)


@pytest.fixture(scope="module")
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    name = f"t_{_db_names[0]}_fuzz_served"
    async with copied_database(pg_server_url, pg_template, name) as url:
        yield url


@pytest.fixture(scope="module")
def server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_process(database, tmp_path_factory.mktemp("fuzz-served")) as running:
        yield running


@pytest.fixture(scope="module")
def http(server: Served) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def assert_problem(response: httpx.Response) -> None:
    """A 4xx with the problem body, never a 5xx."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json", response.headers
    assert {"type", "title", "detail"} <= set(response.json())


def sendable(value: bytes) -> bytes:
    return bytes(c for c in value if c in _SENDABLE).strip()


@SERVED
@given(request=requests(), path=st.sampled_from(["/events", "/buses/default/events"]))
def test_events_are_acknowledged_or_refused_with_a_4xx(
    http: httpx.Client, request: tuple[list[tuple[bytes, bytes]], bytes], path: str
) -> None:
    pairs, body = request
    headers = [(name, sendable(value)) for name, value in pairs if name.lower() != b"host"]
    response = http.post(path, content=body, headers=headers)
    if response.status_code == 202:
        assert isinstance(response.json()["events"], list)
    else:
        assert_problem(response)


@SERVED
@given(text=definitions(), dialect=st.sampled_from([None, "sonataflow"]))
def test_definitions_deploy_and_start_or_are_refused_with_a_4xx(
    http: httpx.Client, text: str, dialect: str | None
) -> None:
    media = "application/json" if text.lstrip().startswith("{") else "application/yaml"
    params = {"dialect": dialect} if dialect else {}
    deployed = http.post(
        "/workflows", content=text.encode(), headers={"content-type": media}, params=params
    )
    if deployed.status_code != 201:
        assert_problem(deployed)
        return
    workflow = deployed.json()
    started = http.post(
        f"/workflows/{workflow['id']}/instances",
        params={"version": workflow["version"]},
        json={},
    )
    if started.status_code != 201:  # refused input (its schema): not a definition that fails
        assert_problem(started)
        assert started.json()["type"] not in ("invalid-workflow", "unreadable-workflow")


def test_the_server_logged_no_traceback(server: Served) -> None:
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
    assert "Traceback" not in server.output(), server.output()[-3000:]
