"""The reference resolver (tideflow.references) against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest

from tests.support.refserver import ref_server
from tideflow.errors import WorkflowValidationError, format_path
from tideflow.references import FetchLimits, load_definition, read_references
from tideflow.runtime._input import InputChecker
from tideflow.workflow import parse_document

FUNCTIONS = {"functions": [{"name": "greet", "type": "expression", "operation": ".n + 1"}]}
SCHEMA = {"type": "object", "required": ["n"]}


def definition(functions: str, schema: str | None = None) -> str:
    lines = [
        "id: greet",
        'specVersion: "0.8"',
        f"functions: {functions}",
        *([f"dataInputSchema: {schema}"] if schema else []),
        "states:",
        "  - name: Greet",
        "    type: operation",
        "    actions:",
        "      - functionRef: greet",
        "    end: true",
    ]
    return "\n".join(lines) + "\n"


def problems(exc: pytest.ExceptionInfo[WorkflowValidationError]) -> list[tuple[str, str]]:
    return [(format_path(p.path), p.message) for p in exc.value.problems]


async def test_http_documents_are_fetched_and_inlined_in_the_resolved_document() -> None:
    async with ref_server() as server:
        server.documents["/functions.json"] = json.dumps(FUNCTIONS)
        server.documents["/schema.json"] = json.dumps(SCHEMA)
        text = definition(f"{server.url}/functions.json", f"{server.url}/schema.json")
        loaded = await load_definition(text)
    assert loaded.workflow.function("greet").operation == ".n + 1"
    assert loaded.document["functions"] == FUNCTIONS["functions"]
    assert loaded.document["dataInputSchema"] == {"schema": SCHEMA}
    assert sorted(server.requests) == ["/functions.json", "/schema.json"]


async def test_a_document_named_twice_is_fetched_once() -> None:
    async with ref_server() as server:
        server.documents["/both.json"] = json.dumps({"functions": [], "events": []})
        doc = parse_document(
            definition(f"{server.url}/both.json") + f"events: {server.url}/both.json\n"
        )
        contents = await read_references(doc)
    assert list(contents) == [f"{server.url}/both.json"]
    assert server.requests == ["/both.json"]


async def test_not_found_unreachable_too_large_and_redirect_loops_are_problems() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/functions.json"
    async with ref_server() as server:
        server.documents["/big.json"] = json.dumps({"functions": [], "pad": "x" * 2048})
        server.documents["/loop"] = (302, "/loop")
        limits = FetchLimits(max_bytes=1024, max_redirects=3)
        cases = {
            "/missing.json": "HTTP 404",
            "/big.json": "larger than 1024 bytes",
            "/loop": "more than 3 redirects",
        }
        for path, reason in cases.items():
            url, message = server.url + path, f"cannot fetch '{server.url}{path}': {reason}"
            with pytest.raises(WorkflowValidationError) as caught:
                await load_definition(definition(url), limits=limits)
            assert problems(caught) == [("functions", message)]
    with pytest.raises(WorkflowValidationError) as caught:
        await load_definition(definition(closed))
    [(path, message)] = problems(caught)
    assert path == "functions"
    assert message.startswith(f"cannot fetch '{closed}': ")


async def test_a_server_that_does_not_answer_in_time_is_a_problem() -> None:
    async with ref_server() as server:
        server.documents["/slow.json"] = json.dumps(FUNCTIONS)
        server.held["/slow.json"] = asyncio.Event()  # never set while the fetch waits
        url = f"{server.url}/slow.json"
        with pytest.raises(WorkflowValidationError) as caught:
            await load_definition(definition(url), limits=FetchLimits(timeout=0.2))
    assert problems(caught) == [
        ("functions", f"cannot fetch '{url}': no complete answer within 0.2 s")
    ]


async def test_local_files_only_where_allowed_remote_documents_always(tmp_path: Path) -> None:
    (tmp_path / "fns.json").write_text(json.dumps(FUNCTIONS))
    assert (await load_definition(definition("fns.json"), base_dir=tmp_path)).workflow.functions
    with pytest.raises(WorkflowValidationError) as caught:
        await load_definition(definition("fns.json"), base_dir=tmp_path, local_files=False)
    assert problems(caught) == [
        ("functions", "cannot read 'fns.json': local files are not read here; inline it")
    ]
    async with ref_server() as server:
        server.documents["/functions.json"] = json.dumps(FUNCTIONS)
        remote = definition(f"{server.url}/functions.json")
        assert (await load_definition(remote, local_files=False)).workflow.functions


async def test_a_schema_fetched_over_http_has_its_siblings_fetched_beside_it() -> None:
    # issue 17: `$ref: customer.json` resolves against the schema's URL, as SonataFlow does
    order = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "properties": {"customer": {"$ref": "customer.json"}},
        "required": ["customer"],
    }
    customer = {"type": "object", "required": ["id"]}
    async with ref_server() as server:
        server.documents["/functions.json"] = json.dumps(FUNCTIONS)
        server.documents["/schemas/order.json"] = json.dumps(order)
        server.documents["/schemas/customer.json"] = json.dumps(customer)
        text = definition(f"{server.url}/functions.json", f"{server.url}/schemas/order.json")
        loaded = await load_definition(text)
    assert sorted(server.requests) == [
        "/functions.json",
        "/schemas/customer.json",
        "/schemas/order.json",
    ]
    schema = loaded.document["dataInputSchema"]["schema"]
    embedded = schema["$tideflowDocuments"][f"{server.url}/schemas/customer.json"]
    assert embedded == customer
    checker = InputChecker(loaded.workflow)
    assert checker.problem({"customer": {"id": "c1"}}) is None
    assert "customer" in (checker.problem({"customer": {}}) or "")
