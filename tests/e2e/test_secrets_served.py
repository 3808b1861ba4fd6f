"""Secrets through a real ``tideflow serve``: grants, the secrets file, redaction, sink credentials.

One server for the module, started with a secret in the environment
(``TIDEFLOW_SECRET_API_KEY``), one in a secrets file (``TIDEFLOW_SECRETS_FILE``)
and grants on the command line (``--grant-secret``). A function (``--functions``)
receives the real values and answers them back with their digest: the digest
proves the call got them, while the instance's output, data, error, timeline,
produced events, lifecycle events and the server's log show only ``***``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.cli import run_cli as cli
from tests.support.served import LOCAL, Served, copied_database, serve_process
from tests.support.sink import running_sink

API_KEY = "sk-live-4242abcd"
DB_PASSWORD = "pg-pass-9f8e7d"
HOOK_AUTH = "Bearer hook-token-77aa"
SECRET_TEXTS = (API_KEY, DB_PASSWORD, HOOK_AUTH, "hook-token")

FUNCTIONS = '''
import hashlib


def echo(args):
    """Answer the arguments back, and the digest of the secrets they carry."""
    seen = (args["key"] + "/" + args["db"]).encode()
    return {"echoed": args, "digest": hashlib.sha256(seen).hexdigest()}
'''


def _leaky(wf_id: str, leak: str) -> dict[str, Any]:
    """A workflow that calls ``echo`` with its secrets and then tries to leak them."""
    return {
        "id": wf_id,
        "version": "1",
        "specVersion": "0.8",
        "secrets": ["API_KEY", "db_password"],
        "functions": [
            {"name": "echo", "type": "custom", "operation": "rest:post:http://echo.invalid/e"}
        ],
        "events": [{"name": "leaked", "type": "com.example.leaked", "kind": "produced"}],
        "start": "Call",
        "states": [
            {
                "name": "Call",
                "type": "operation",
                "actions": [
                    {
                        "functionRef": {
                            "refName": "echo",
                            "arguments": {
                                "key": "${ $SECRETS.API_KEY }",
                                "db": "${ $SECRETS.db_password }",
                            },
                        }
                    }
                ],
                "transition": "Leak",
            },
            {
                "name": "Leak",
                "type": "inject",
                "data": {"tried": True},
                "stateDataFilter": {"output": leak},
                "end": {
                    "produceEvents": [{"eventRef": "leaked", "data": "${ {k: $SECRETS.API_KEY} }"}]
                },
            },
        ],
    }


LEAKY = _leaky("leaky", "${ {x: $SECRETS, echoed: .echoed, digest: .digest} }")
LEAKY_ERROR = _leaky("leaky-error", "${ $SECRETS.API_KEY | tonumber }")
GREEDY = {**_leaky("greedy", "${ . }"), "secrets": ["API_KEY", "OTHER"]}


@pytest.fixture(scope="module")
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    name = f"t_{_db_names[0]}_secrets_served"
    async with copied_database(pg_server_url, pg_template, name) as url:
        yield url


@pytest.fixture(scope="module")
def server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("serve")
    functions = home / "echo.functions.py"
    functions.write_text(FUNCTIONS)
    secrets_file = home / "secrets.yaml"
    secrets_file.write_text(f"db_password: {DB_PASSWORD}\n")
    grants = ["leaky*=API_KEY,db_password", "sink:127.0.0.1=HOOK_AUTH"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIDEFLOW_SECRET_API_KEY", API_KEY)
        patch.setenv("TIDEFLOW_SECRET_HOOK_AUTH", HOOK_AUTH)
        patch.setenv("TIDEFLOW_SECRETS_FILE", str(secrets_file))
        args = ["--functions", str(functions), *LOCAL]  # the sink is on 127.0.0.1
        args += [arg for grant in grants for arg in ("--grant-secret", grant)]
        with serve_process(database, home, *args) as running:
            yield running


def _clean(text: str) -> None:
    for secret in SECRET_TEXTS:
        assert secret not in text


async def _finished(http: httpx.AsyncClient, instance_id: str) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            shown: dict[str, Any] = (await http.get(f"/instances/{instance_id}")).json()
            if shown["status"] in ("completed", "failed"):
                return shown
            await asyncio.sleep(0.05)


async def _deploy(http: httpx.AsyncClient, definition: dict[str, Any]) -> httpx.Response:
    return await http.post("/workflows", json=definition)


async def _run(http: httpx.AsyncClient, wf_id: str) -> dict[str, Any]:
    started = await http.post(f"/workflows/{wf_id}/instances", json={})
    assert started.status_code == 201, started.text
    return await _finished(http, started.json()["id"])


async def _lifecycle(http: httpx.AsyncClient, instance_id: str, last: str) -> list[Any]:
    async with asyncio.timeout(20):
        while True:
            page = await http.get("/buses/tideflow.lifecycle/events", params={"limit": 1000})
            events = [r["event"] for r in page.json()["events"]]
            mine = [e for e in events if e["subject"] == instance_id]
            if any(e["type"].endswith(last) for e in mine):
                return mine
            await asyncio.sleep(0.05)


async def test_an_ungranted_secret_is_refused_at_deploy_naming_it_and_the_workflow(
    server: Served,
) -> None:
    async with server.async_client() as http:
        refused = await _deploy(http, GREEDY)
        assert refused.status_code == 422, refused.text
        problems = {p["path"]: p["message"] for p in refused.json()["errors"]}
        assert set(problems) == {"secrets[0]", "secrets[1]"}
        assert "secret 'API_KEY' is not granted to workflow 'greedy'" in problems["secrets[0]"]
        assert "--grant-secret 'greedy=OTHER'" in problems["secrets[1]"]
        # the admin API grants one of the two: the other is still refused
        grant = {"pattern": "greedy", "secrets": ["API_KEY"]}
        made = await http.post("/secrets/grants", json=grant)
        assert made.status_code == 201, made.text
        again = await _deploy(http, GREEDY)
        assert again.status_code == 422
        assert [p["path"] for p in again.json()["errors"]] == ["secrets[1]"]
        listed = (await http.get("/secrets/grants")).json()["grants"]
        assert {**grant, "origin": "api"} in listed
        fixed = {"pattern": "leaky*", "secrets": ["API_KEY", "db_password"], "origin": "settings"}
        assert fixed in listed
        _clean(json.dumps(listed))
        assert (await http.delete("/secrets/grants/leaky*")).status_code == 409  # settings
        assert (await http.delete("/secrets/grants/greedy")).status_code == 204
        assert (await http.delete("/secrets/grants/greedy")).status_code == 404
        trail = (await http.get("/buses/tideflow.audit/events", params={"limit": 1000})).text
        assert "secret.granted" in trail
        assert "secret.revoked" in trail
        # SonataFlow's $SECRET.name reads are secrets the definition uses, granted or not
        sonata = {**_leaky("sonata", "${ {k: $SECRET.API_KEY} }"), "secrets": []}
        refused_sonata = await http.post(
            "/workflows", json=sonata, params={"dialect": "sonataflow"}
        )
        assert refused_sonata.status_code == 422, refused_sonata.text
        assert [p["path"] for p in refused_sonata.json()["errors"]] == ["secrets[0]"]
        assert "'API_KEY' is not granted to workflow 'sonata'" in refused_sonata.text
        reader = await http.post("/tokens", json={"name": "reader", "scopes": ["read", "deploy"]})
        as_reader = {"authorization": f"Bearer {reader.json()['token']}"}
        denied = await http.get("/secrets/grants", headers=as_reader)
        assert denied.status_code == 403  # granting is the admin's


async def test_a_granted_secret_reaches_the_call_and_nothing_else(server: Served) -> None:
    async with server.async_client() as http:
        assert (await _deploy(http, LEAKY)).status_code == 201
        done = await _run(http, "leaky")
        assert done["status"] == "completed", done
        output = done["output"]
        # the call got both real values: the environment's and the secrets file's
        seen = f"{API_KEY}/{DB_PASSWORD}".encode()
        assert output["digest"] == hashlib.sha256(seen).hexdigest()
        assert output["x"] == {"API_KEY": "***", "db_password": "***"}
        assert output["echoed"] == {"key": "***", "db": "***"}
        timeline = await http.get(f"/instances/{done['id']}/timeline", params={"limit": 5000})
        lifecycle = await _lifecycle(http, done["id"], ".completed")
        produced = (await http.get("/buses/default/events", params={"limit": 1000})).json()
        events = [r["event"] for r in produced["events"]]
        leaked = [e for e in events if e["type"] == "com.example.leaked"]
        assert leaked
        assert leaked[-1]["data"] == {"k": "***"}
        for text in (json.dumps(done), timeline.text, json.dumps(lifecycle), json.dumps(leaked)):
            _clean(text)


async def test_an_error_quoting_a_secret_is_redacted(server: Served) -> None:
    async with server.async_client() as http:
        assert (await _deploy(http, LEAKY_ERROR)).status_code == 201
        failed = await _run(http, "leaky-error")
        assert failed["status"] == "failed", failed
        assert 'string ("***") cannot be parsed as a number' in failed["error"]["message"]
        lifecycle = await _lifecycle(http, failed["id"], ".failed")
        timeline = await http.get(f"/instances/{failed['id']}/timeline", params={"limit": 5000})
        for text in (json.dumps(failed), json.dumps(lifecycle), timeline.text):
            _clean(text)
    _clean(server.output())  # the server's log, after every test above


async def test_a_sink_credential_is_a_secret_reference_never_shown_nor_stored(
    server: Served, database: str
) -> None:
    headers = {"authorization": {"secret": "HOOK_AUTH"}, "x-team": "blue"}
    async with running_sink() as sink, server.async_client() as http:
        body = {"bus": "default", "sink": f"{sink.url}/hook", "headers": headers}
        made = await http.post("/subscriptions", json=body)
        assert made.status_code == 201, made.text
        assert made.json()["headers"] == headers
        # a secret not granted to this sink's host is refused by name
        stolen = {**body, "headers": {"authorization": {"secret": "API_KEY"}}}
        refused = await http.post("/subscriptions", json=stolen)
        assert refused.status_code == 422
        assert "secret 'API_KEY' is not granted to 'sink:127.0.0.1'" in refused.json()["detail"]
        event = {"specversion": "1.0", "id": "s-1", "source": "/t", "type": "com.example.ping"}
        structured = {"content-type": "application/cloudevents+json"}
        sent = await http.post("/events", content=json.dumps(event), headers=structured)
        assert sent.status_code == 202, sent.text
        await sink.wait_for(lambda: any(r.id == "s-1" for r in sink.received), timeout=20)
        got = next(r for r in sink.received if r.id == "s-1")
        assert got.headers["authorization"] == HOOK_AUTH
        assert got.headers["x-team"] == "blue"
        shown = [(await http.get("/subscriptions")).text, made.text]
        shown.append((await http.get(f"/subscriptions/{made.json()['id']}")).text)
    connection = await asyncpg.connect(database)
    try:
        stored = await connection.fetchval(
            "SELECT spec::text FROM tideflow_subscriptions WHERE id = $1", made.json()["id"]
        )
    finally:
        await connection.close()
    assert '"HOOK_AUTH"' in stored  # the reference is what the database keeps
    for text in (*shown, stored, server.output()):
        _clean(text)


async def test_the_cli_grants_lists_and_revokes(server: Served) -> None:
    code, out, err = await cli(
        server.url, "secrets", "grant", "cli.*", "A", "B", token=server.token
    )
    assert code == 0, err
    assert json.loads(out) == {"pattern": "cli.*", "secrets": ["A", "B"], "origin": "api"}
    code, out, _ = await cli(server.url, "secrets", "grants", token=server.token)
    assert "cli.*\tA,B\tapi" in out.splitlines()
    assert "leaky*\tAPI_KEY,db_password\tsettings" in out.splitlines()
    code, _, err = await cli(server.url, "secrets", "revoke", "cli.*", token=server.token)
    assert code == 0, err
    code, _, err = await cli(server.url, "secrets", "revoke", "cli.*", token=server.token)
    assert code == 1
    assert "no secret grant with pattern 'cli.*'" in err
    args = ["subscriptions", "create", "--bus", "default", "--sink", "http://127.0.0.1:9/x"]
    args += ["--secret-header", "authorization=HOOK_AUTH", "--header", "x-team=blue"]
    code, out, err = await cli(server.url, *args, token=server.token)
    assert code == 0, err
    made = json.loads(out)
    assert made["headers"] == {"authorization": {"secret": "HOOK_AUTH"}, "x-team": "blue"}
    code, _, err = await cli(server.url, "subscriptions", "delete", made["id"], token=server.token)
    assert code == 0, err


LATE = {
    "id": "late",
    "version": "1",
    "specVersion": "0.8",
    "secrets": ["API_KEY"],
    "start": "Only",
    "states": [
        {
            "name": "Only",
            "type": "inject",
            "data": {},
            "stateDataFilter": {"output": "${ {given: ($SECRETS.API_KEY != null)} }"},
            "end": True,
        }
    ],
}


async def test_a_revoked_grant_takes_the_secret_from_the_next_run(server: Served) -> None:
    async with server.async_client() as http:
        grant = {"pattern": "late", "secrets": ["API_KEY"]}
        assert (await http.post("/secrets/grants", json=grant)).status_code == 201
        assert (await _deploy(http, LATE)).status_code == 201
        assert (await _run(http, "late"))["output"] == {"given": True}
        assert (await http.delete("/secrets/grants/late")).status_code == 204
        assert (await _deploy(http, {**LATE, "version": "2"})).status_code == 422
        # the version is loaded in the server: the grant's NOTIFY makes it load again
        async with asyncio.timeout(20):
            while (await _run(http, "late"))["output"] != {"given": False}:  # noqa: ASYNC110
                await asyncio.sleep(0.05)


def test_a_missing_secrets_file_stops_the_start_with_its_name(
    database: str, tmp_path: Path
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIDEFLOW_SECRETS_FILE", str(tmp_path / "nope.yaml"))
        missing = pytest.raises(RuntimeError, match=r"cannot read secrets file .*nope\.yaml")
        with missing, serve_process(database, tmp_path):
            pass
