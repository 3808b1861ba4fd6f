"""DSL 1.0 ``call: a2a`` and ``call: mcp`` on the local host, against a real A2A agent and
a real MCP server on 127.0.0.1 (tests/support/agents.py): the protocol exchanges, the
authentication, the errors as Problem Details, the egress policy, the bounds."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import tideflow
from tests.support.agents import TOKEN, AgentState, serve_agents
from tideflow.egress import EgressPolicy
from tideflow.errors import FunctionCallError
from tideflow.runtime.functions.invoker import FunctionInvoker
from tideflow.runtime.functions.jsonrpc import Budget, post
from tideflow.runtime.hosts.local import LocalHost
from tideflow.runtime.result import Completed, Failed
from tideflow.workflow.dsl1 import load_document, validate_document

HEAD = "document: {dsl: '1.0.3', namespace: test, name: agents, version: '1.0.0'}\n"
ERRORS = "https://serverlessworkflow.io/spec/1.0.0/errors/"
BEARER = "authentication: {bearer: {token: '${ $workflow.input.token }'}}"

A2A = (
    HEAD
    + f"""
do:
  - ask:
      call: a2a
      with:
        method: message/send
        agentCard:
          endpoint:
            uri: '{{base}}/.well-known/agent-card.json'
            {BEARER}
        parameters:
          message: {{parts: [{{kind: text, text: '${{ .question }}'}}]}}
      export: {{as: '{{sent: .}}'}}
  - again:
      call: a2a
      with:
        method: tasks/get
        server: {{uri: '{{base}}/a2a', {BEARER}}}
        parameters: '${{ {{id: $context.sent.id}} }}'
      export: {{as: '$context + {{got: .}}'}}
  - stream:
      call: a2a
      with:
        method: message/stream
        server: {{uri: '{{base}}/a2a', {BEARER}}}
        parameters: {{message: {{parts: [{{kind: text, text: again}}], messageId: m-2}}}}
      export: {{as: '$context + {{events: .}}'}}
  - report: {{set: '${{ $context }}'}}
"""
)

MCP = (
    HEAD
    + f"""
do:
  - list:
      call: mcp
      with:
        method: tools/list
        transport:
          http:
            endpoint: {{uri: '{{base}}/mcp', {BEARER}}}
      export: {{as: '{{tools: [.tools[].name]}}'}}
  - add:
      call: mcp
      with:
        method: tools/call
        parameters: {{name: add, arguments: {{a: '${{ $workflow.input.a }}', b: 2}}}}
        client: {{name: tests, version: '9.9'}}
        transport:
          http:
            endpoint: {{uri: '{{base}}/mcp', {BEARER}}}
            headers: {{x-trace: '${{ "t-" + ($workflow.input.a | tostring) }}'}}
      export: {{as: '$context + {{sum: .structuredContent.sum, error: .isError}}'}}
  - report: {{set: '${{ $context }}'}}
"""
)


async def run(text: str, data: Any, tmp_path: Path, invoker: FunctionInvoker | None = None) -> Any:
    path = tmp_path / "agents.yaml"
    path.write_text(text, encoding="utf-8")
    ran = await LocalHost(invoker=invoker).run_file(path, data)  # closes the host
    return ran.result


def failure(result: Any) -> dict[str, Any]:
    assert isinstance(result, Failed), result
    details = result.error.details
    assert details is not None
    return dict(details)


@pytest.fixture
async def agents() -> Any:
    async with serve_agents() as state:
        yield state


async def test_a2a_sends_gets_and_streams_with_the_card_and_the_token(
    agents: AgentState, tmp_path: Path
) -> None:
    data = {"base": agents.base, "token": TOKEN, "question": "hello"}
    result = await run(A2A, data, tmp_path)
    assert isinstance(result, Completed), result
    out = result.output
    assert out["sent"]["status"] == {"state": "completed"}
    assert out["sent"]["artifacts"][0]["parts"] == [{"kind": "text", "text": "echo: hello"}]
    assert out["got"] == out["sent"]
    assert [e["kind"] for e in out["events"]] == ["status-update", "artifact-update",
                                                   "status-update"]  # fmt: skip
    assert out["events"][-1]["final"] is True
    sent, got, streamed = agents.received
    assert [m["method"] for m in agents.received] == ["message/send", "tasks/get", "message/stream"]
    assert sent["params"]["message"]["role"] == "user"  # defaulted, as the DSL asks
    assert uuid.UUID(sent["params"]["message"]["messageId"]).version == 5  # from the call's key
    assert streamed["params"]["message"] == {
        "parts": [{"kind": "text", "text": "again"}],
        "messageId": "m-2",
        "role": "user",
    }
    assert got["params"] == {"id": out["sent"]["id"]}
    assert {m["headers"]["authorization"] for m in agents.received} == {f"Bearer {TOKEN}"}
    assert {m["jsonrpc"] for m in agents.received} == {"2.0"}


async def test_a2a_failures_are_runtime_problems_with_the_status(
    agents: AgentState, tmp_path: Path
) -> None:
    text = (
        HEAD
        + f"""
do:
  - list:
      call: a2a
      with: {{method: tasks/list, server: {{uri: '{{base}}/a2a', {BEARER}}}}}
"""
    )
    refused = failure(await run(text, {"base": agents.base, "token": TOKEN}, tmp_path))
    assert refused["type"] == ERRORS + "runtime"
    assert refused["status"] == 500
    assert refused["instance"] == "/do/0/list"
    assert "JSON-RPC error -32601: Method not found" in refused["detail"]
    unauthorized = failure(await run(text, {"base": agents.base, "token": "wrong"}, tmp_path))
    assert unauthorized["type"] == ERRORS + "runtime"
    assert unauthorized["status"] == 401


async def test_mcp_initializes_a_session_calls_and_ends_it(
    agents: AgentState, tmp_path: Path
) -> None:
    result = await run(MCP, {"base": agents.base, "token": TOKEN, "a": 40}, tmp_path)
    assert isinstance(result, Completed), result
    assert result.output == {"tools": ["add"], "sum": 42, "error": False}
    opening = ["initialize", "notifications/initialized"]
    assert agents.methods() == [*opening, "tools/list", *opening, "tools/call"]
    first, second = agents.received[0], agents.received[3]
    assert first["params"] == {"protocolVersion": "2025-06-18", "capabilities": {},
                               "clientInfo": {"name": "tideflow",
                                              "version": tideflow.__version__}}  # fmt: skip
    assert second["params"]["clientInfo"] == {"name": "tests", "version": "9.9"}
    call = agents.received[5]
    assert call["params"] == {"name": "add", "arguments": {"a": 40, "b": 2}}
    assert call["headers"]["mcp-session-id"] == "session-2"
    assert call["headers"]["mcp-protocol-version"] == "2025-06-18"
    assert call["headers"]["x-trace"] == "t-40"
    assert "mcp-session-id" not in first["headers"]
    assert agents.sessions == {"session-1": "ended", "session-2": "ended"}


async def test_mcp_timeout_and_tool_errors(agents: AgentState, tmp_path: Path) -> None:
    text = (
        HEAD
        + f"""
do:
  - call:
      call: mcp
      with:
        method: tools/call
        parameters: {{name: '${{ .tool }}', arguments: {{}}}}
        timeout: {{milliseconds: 200}}
        transport: {{http: {{endpoint: {{uri: '{{base}}/mcp', {BEARER}}}}}}}
"""
    )
    data = {"base": agents.base, "token": TOKEN}
    late = failure(await run(text, {**data, "tool": "slow"}, tmp_path))
    assert late["type"] == ERRORS + "timeout"
    assert late["instance"] == "/do/0/call"
    unknown = failure(await run(text, {**data, "tool": "nope"}, tmp_path))
    assert unknown["type"] == ERRORS + "runtime"
    assert "JSON-RPC error -32602: Unknown tool or method: tools/call" in unknown["detail"]


async def test_the_egress_policy_holds_for_agents_and_mcp_servers(
    agents: AgentState, tmp_path: Path
) -> None:
    data = {"base": agents.base, "token": TOKEN, "question": "hi", "a": 1}
    for text in (A2A, MCP):
        invoker = FunctionInvoker(egress=EgressPolicy.for_server())  # closed by the host
        refused = failure(await run(text, data, tmp_path, invoker))
        assert refused["type"] == ERRORS + "authorization"
        assert "EGRESS_DENIED" in refused["detail"]
    assert agents.received == []


async def test_answers_past_the_budget_are_refused(agents: AgentState) -> None:
    hello = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
             "params": {"protocolVersion": "2025-06-18", "capabilities": {}}}  # fmt: skip
    auth = {"authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient() as client:
        with pytest.raises(FunctionCallError) as raised:
            await post(client, f"{agents.base}/mcp", hello, auth, "call 'x'", Budget(20))
        answer = await post(client, f"{agents.base}/mcp", hello, auth, "call 'x'", Budget())
    assert raised.value.code == "RESPONSE_TOO_LARGE"
    assert answer.messages[0]["result"]["serverInfo"] == {"name": "adder", "version": "1"}


def test_arguments_are_validated_with_paths_and_stdio_is_refused() -> None:
    document = yaml.safe_load(
        HEAD
        + """
do:
  - nowhere: {call: a2a, with: {method: message/send}}
  - wrong: {call: a2a, with: {method: message/shout, server: 'https://agent'}}
  - both:
      call: mcp
      with:
        method: tools/list
        transport: {http: {endpoint: 'https://m'}, stdio: {command: srv}}
  - local:
      call: mcp
      with: {method: tools/list, transport: {stdio: {command: npx, arguments: [srv]}}}
"""
    )
    problems = {(p.path, p.severity): p.message for p in validate_document(document)}
    assert "'agentCard' or 'server'" in problems[(("do", 0, "nowhere", "with"), "error")]
    assert "message/send" in problems[(("do", 1, "wrong", "with", "method"), "error")]
    assert "http" in problems[(("do", 2, "both", "with", "transport", "stdio"), "error")]
    stdio = problems[(("do", 3, "local", "with", "transport", "stdio"), "warning")]
    assert "starts the server as a process" in stdio


async def test_a_run_reaching_a_stdio_transport_fails_as_configuration(tmp_path: Path) -> None:
    text = (
        HEAD
        + """
do:
  - local:
      call: mcp
      with: {method: tools/list, transport: {stdio: {command: npx}}}
"""
    )
    load_document(yaml.safe_load(text))  # valid (with a warning)
    refused = failure(await run(text, {}, tmp_path))
    assert refused["type"] == ERRORS + "configuration"
    assert "starts the server as a process" in refused["detail"]
