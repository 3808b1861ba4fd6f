"""tideflow.client against a real ``tideflow serve``: the blocking and the async client,
and errors as exceptions carrying the server's message and problem."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NotRequired, get_origin, get_type_hints

import pytest

from tests.support.served import Served, serve_process
from tideflow.api.testserver import free_port
from tideflow.client import (
    ApiClient,
    ApiError,
    Client,
    Deployed,
    EventAck,
    EventPage,
    Instance,
    InstancePage,
    InstanceStarted,
    Workflow,
)
from tideflow.errors import TideflowError

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "examples" / "workflows" / "hello-world.yaml"
EVENT = {"specversion": "1.0", "id": "c-1", "source": "/client", "type": "com.example.t"}


@pytest.fixture
def server(pg_url: str, tmp_path: Path) -> Iterator[Served]:
    with serve_process(pg_url, tmp_path) as running:
        yield running


def test_the_blocking_client_deploys_runs_and_reads(server: Served) -> None:
    expected = json.loads(HELLO.with_name("hello-world.output.json").read_text())
    data = json.loads(HELLO.with_name("hello-world.input.json").read_text())
    with Client(server.url, token=server.token) as client:
        deployed = client.deploy_workflow(HELLO.read_text())
        assert deployed["id"] == "hello-world"
        assert "hello-world" in {w["id"] for w in client.list_workflows()}
        ended = client.start_instance("hello-world", data, wait=30)
        assert (ended["status"], ended["output"]) == ("completed", expected)
        assert client.get_instance(ended["id"])["output"] == expected
        assert [i["id"] for i in client.list_instances(workflow="hello-world")] == [ended["id"]]
        assert client.timeline(ended["id"])
        ack = client.send_event("default", EVENT)
        assert ack["offset"] is not None
        page = client.read("default", after=ack["offset"] - 1)
        assert [e["event"]["id"] for e in page["events"]] == ["c-1"]
        _typed_answers_have_the_keys_the_server_sends(client)  # one server for both


def _keys(typed: Any) -> tuple[frozenset[str], frozenset[str]]:
    """The required and the known keys of a TypedDict (from its hints: under postponed
    annotations, Python 3.11's own ``__required_keys__`` misses ``NotRequired``)."""
    hints = get_type_hints(typed, include_extras=True)
    optional = {k for k, hint in hints.items() if get_origin(hint) is NotRequired}
    return frozenset(hints) - optional, frozenset(hints)


def _shaped(answer: Any, typed: Any) -> None:
    """``answer`` has every key ``typed`` requires and none it does not declare."""
    required, known = _keys(typed)
    assert required <= set(answer) <= known, (typed.__name__, sorted(answer))


def _typed_answers_have_the_keys_the_server_sends(client: Client) -> None:
    _shaped(client.deploy_workflow(HELLO.read_text()), Deployed)
    _shaped(client.list_workflows()[0], Workflow)
    _shaped(client.start_instance("hello-world", {"name": "Ada"}), InstanceStarted)
    ended = client.start_instance("hello-world", {"name": "Ada"}, wait=30)
    _shaped(ended, Instance)
    assert set(ended) == _keys(Instance)[1]  # no optional key: every one is sent
    page = client.instances_page(limit=1)
    _shaped(page, InstancePage)
    assert page["next"] is not None  # two instances, a page of one
    _shaped(page["instances"][0], Instance)
    ack = client.send_event("default", EVENT)
    _shaped(ack, EventAck)
    events = client.read("default")
    _shaped(events, EventPage)


def test_an_error_answer_is_an_api_error_with_the_servers_problem(server: Served) -> None:
    with Client(server.url, token=server.token) as client:
        with pytest.raises(ApiError) as missing:
            client.get_instance("0190c0de-0000-7000-8000-000000000000")
        assert missing.value.status == 404
        assert "0190c0de-0000-7000-8000-000000000000" in missing.value.detail
        assert str(missing.value).endswith("[HTTP 404]")
        bad = "id: bad\nversion: '1'\nspecVersion: '0.8'\nstart: Nowhere\nstates: []\n"
        with pytest.raises(ApiError) as invalid:
            client.deploy_workflow(bad)
        assert invalid.value.status in (400, 422)
        assert invalid.value.errors, invalid.value.detail
    with Client(server.url, token="tf_nope_nope") as stranger, pytest.raises(ApiError) as denied:
        stranger.list_workflows()
    assert denied.value.status == 401


def test_an_unreachable_server_is_a_tideflow_error_not_an_api_error() -> None:
    with (
        Client(f"http://127.0.0.1:{free_port()}") as client,
        pytest.raises(TideflowError) as failed,
    ):
        client.list_workflows()
    assert not isinstance(failed.value, ApiError)
    assert "cannot reach the Tideflow server" in str(failed.value)


async def test_the_async_client_raises_the_same_errors(server: Served) -> None:
    async with ApiClient(server.url, token=server.token) as client:
        await client.deploy_workflow(HELLO.read_text(), "application/yaml")
        ended = await client.start_instance("hello-world", {"name": "Ada"}, wait=30)
        assert ended["status"] == "completed"
        with pytest.raises(ApiError) as missing:
            await client.start_instance("no-such-workflow", {})
    assert missing.value.status == 404
