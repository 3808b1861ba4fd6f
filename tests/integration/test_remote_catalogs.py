"""Remote DSL 1.0 catalogs: ``{endpoint}/functions/{name}/{version}/function.yaml`` fetched
at load or deploy through the egress policy, bounded, cached (a real HTTP server on 127.0.0.1,
a real registry, the real CLI)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml

from tests.support.refserver import RefServer, ref_server
from tideflow.catalogs import FUNCTION_BYTES
from tideflow.deploy import deploy_definition
from tideflow.egress import EgressPolicy
from tideflow.errors import WorkflowValidationError, format_path
from tideflow.references import CatalogCache, with_remote_catalogs
from tideflow.runtime.gateway import PostgresRegistry
from tideflow.testing import ManualClock

GREET = "set:\n  greeting: '${ \"hello \" + .name }'\n"
FUNCTION = "/functions/greet/1.0.0/function.yaml"


def calling(endpoint: Any, *calls: str, version: str = "1.0.0") -> str:
    return yaml.safe_dump({
        "document": {"dsl": "1.0.3", "namespace": "test", "name": "remote", "version": version},
        "use": {"catalogs": {"shared": {"endpoint": endpoint}}},
        "do": [{f"t{i}": {"call": call, "with": {"name": "ada"}}} for i, call in enumerate(calls)],
    })  # fmt: skip


def problems(caught: pytest.ExceptionInfo[WorkflowValidationError]) -> list[tuple[str, str]]:
    return [(format_path(p.path), p.message) for p in caught.value.problems]


async def test_a_function_is_fetched_once_into_use_functions_and_cached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = ManualClock()
    cache = CatalogCache(seconds=60, clock=clock)
    async with ref_server() as server:
        server.documents[FUNCTION] = GREET
        doc = yaml.safe_load(calling(server.url, "greet:1.0.0@shared", "greet:1.0.0@shared"))
        resolved = await with_remote_catalogs(doc, cache=cache)
        assert resolved["use"]["functions"] == {"greet:1.0.0@shared": yaml.safe_load(GREET)}
        assert "functions" not in doc["use"]  # the given document is left alone
        await with_remote_catalogs(doc, cache=cache)
        assert server.requests == [FUNCTION]  # two calls, two loads: one fetch
        clock.advance(61)
        await with_remote_catalogs(doc, cache=cache)
        assert server.requests == [FUNCTION, FUNCTION]


async def test_what_cannot_be_fetched_is_a_problem_at_its_call() -> None:
    async with ref_server() as server:
        server.documents["/functions/big/1.0.0/function.yaml"] = "x: '" + "y" * FUNCTION_BYTES + "'"
        server.documents["/functions/bad/1.0.0/function.yaml"] = "a: [unclosed"
        doc = yaml.safe_load(calling(server.url, "none:1.0.0@shared", "big:1.0.0@shared",
                                     "bad:1.0.0@shared", "../x:1@shared"))  # fmt: skip
        with pytest.raises(WorkflowValidationError) as caught:
            await with_remote_catalogs(doc, cache=CatalogCache())
        found = dict(problems(caught))
        assert "HTTP 404" in found["do[0].t0.call"]
        assert f"larger than {FUNCTION_BYTES} bytes" in found["do[1].t1.call"]
        assert "bad" in found["do[2].t2.call"]
        assert "plain names" in found["do[3].t3.call"]
        refused = yaml.safe_load(calling(server.url, "greet:1.0.0@shared"))
        with pytest.raises(WorkflowValidationError) as denied:
            await with_remote_catalogs(refused, egress=EgressPolicy.for_server(),
                                       cache=CatalogCache())  # fmt: skip
        assert "--allow-egress" in problems(denied)[0][1]
    secured = yaml.safe_load(calling({"uri": "https://c.example", "authentication": {
        "bearer": {"token": "t"}}}, "greet:1.0.0@shared"))  # fmt: skip
    local = yaml.safe_load(calling("file:///etc", "greet:1.0.0@shared"))
    for doc, reason in ((secured, "authentication"), (local, "not an http(s) URL")):
        with pytest.raises(WorkflowValidationError) as caught:
            await with_remote_catalogs(doc)
        assert reason in problems(caught)[0][1]


async def deployed(pool: asyncpg.Pool, server: RefServer, version: str) -> dict[str, Any]:
    registry = PostgresRegistry(pool)
    text = calling(server.url, "greet:1.0.0@shared", version=version)
    egress = EgressPolicy.for_server(allow=["127.0.0.1"])
    result = await deploy_definition(registry, text, "application/yaml", egress=egress)
    stored = await registry.get(result.version.workflow_id, version)
    return stored.definition  # type: ignore[no-any-return]


async def test_a_deploy_stores_the_fetched_function_with_the_version(pool: asyncpg.Pool) -> None:
    async with ref_server() as server:
        server.documents[FUNCTION] = "set:\n  deployed: true\n"
        definition = await deployed(pool, server, "1.0.0")
        with pytest.raises(WorkflowValidationError) as caught:  # loopback is not allowed
            await deploy_definition(PostgresRegistry(pool), calling(server.url, "x:1.0.0@shared",
                                    version="1.0.1"), "application/yaml")  # fmt: skip
    assert definition["use"]["functions"]["greet:1.0.0@shared"] == {"set": {"deployed": True}}
    assert "--allow-egress" in problems(caught)[0][1]


async def test_tideflow_run_calls_a_function_of_a_remote_catalog(tmp_path: Path) -> None:
    async with ref_server() as server:
        server.documents[FUNCTION] = GREET
        definition = tmp_path / "remote.yaml"
        definition.write_text(calling(server.url, "greet:1.0.0@shared"))
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tideflow.cli", "run", str(definition), "--input", "{}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert json.loads(out) == {"greeting": "hello ada"}
