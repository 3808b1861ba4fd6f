"""A small A2A agent and a small MCP server, written here from the protocols, for the
DSL 1.0 ``call: a2a`` and ``call: mcp`` tests.

One Starlette app serves both on 127.0.0.1:

- the A2A agent: its Agent Card at ``/.well-known/agent-card.json`` (JSON-RPC
  at ``/a2a``), ``message/send`` (a completed task whose artifact echoes the
  text), ``message/stream`` (server-sent events: working, the artifact,
  completed with ``final: true``), ``tasks/get``; any other method is the
  JSON-RPC error ``-32601``. With a token set, ``/a2a`` wants ``Bearer TOKEN``.
- the MCP server (streamable HTTP, ``/mcp``): ``initialize`` opens a session
  (``Mcp-Session-Id``); later requests must carry it and
  ``MCP-Protocol-Version``, and come after ``notifications/initialized``;
  ``tools/list``; ``tools/call`` of ``add`` answered as an event stream (a
  progress notification first), of ``slow`` only once released (or after a few
  seconds); ``DELETE``
  ends the session. Same token rule.

:class:`AgentState` records what arrived, for the tests to check.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.services import serve_in_thread
from tideflow.api.testserver import serve_app

TOKEN = "agent-token"
SLOW_SECONDS = 3.0
_BEARER = "authentication: {bearer: {token: '${ $workflow.input.token }'}}"
WORKFLOW = f"""\
document: {{dsl: '1.0.3', namespace: test, name: agent-and-tools, version: '1.0.0'}}
do:
  - ask:
      call: a2a
      with:
        method: message/send
        agentCard: {{endpoint: {{uri: '{{base}}/.well-known/agent-card.json', {_BEARER}}}}}
        parameters: {{message: {{parts: [{{kind: text, text: '${{ .question }}'}}]}}}}
      export: {{as: '{{answer: .artifacts[0].parts[0].text}}'}}
  - add:
      call: mcp
      with:
        method: tools/call
        parameters: {{name: add, arguments: {{a: 1, b: 2}}}}
        transport: {{http: {{endpoint: {{uri: '{{base}}/mcp', {_BEARER}}}}}}}
  - report: {{set: {{answer: '${{ $context.answer }}', sum: '${{ .structuredContent.sum }}'}}}}
"""
"""Asks the agent, then adds with the MCP server; input ``{base, token, question}``,
output ``{answer: "echo: <question>", sum: 3}``."""


@dataclass
class AgentState:
    """What the servers saw."""

    token: str | None = TOKEN
    base: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    """Every JSON-RPC message, with the headers it came with (``headers``)."""
    sessions: dict[str, str] = field(default_factory=dict)
    """MCP session id -> ``open``, ``initialized`` or ``ended``."""
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    """Lets the ``slow`` tool answer (it answers after SLOW_SECONDS anyway)."""

    def methods(self) -> list[str]:
        return [m.get("method", "") for m in self.received]


def _rpc(request_id: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def _error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def _sse(messages: list[dict[str, Any]]) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        for message in messages:
            yield f"event: message\ndata: {json.dumps(message)}\n\n".encode()

    return StreamingResponse(body(), media_type="text/event-stream")


def _text(message: dict[str, Any]) -> str:
    return " ".join(p.get("text", "") for p in message.get("parts", []) if p.get("kind") == "text")


def _task(task_id: str, sent: dict[str, Any]) -> dict[str, Any]:
    artifact = {"artifactId": "a1", "parts": [{"kind": "text", "text": f"echo: {_text(sent)}"}]}
    return {"kind": "task", "id": task_id, "contextId": "ctx-1", "status": {"state": "completed"},
            "artifacts": [artifact], "history": [sent]}  # fmt: skip


def _stream(rid: Any, task: dict[str, Any]) -> StreamingResponse:
    update = {"taskId": task["id"], "contextId": task["contextId"]}
    return _sse([
        _rpc(rid, {**update, "kind": "status-update", "status": {"state": "working"},
                   "final": False}),
        _rpc(rid, {**update, "kind": "artifact-update", "artifact": task["artifacts"][0]}),
        _rpc(rid, {**update, "kind": "status-update", "status": {"state": "completed"},
                   "final": True}),
    ])  # fmt: skip


class _Servers:
    def __init__(self, state: AgentState) -> None:
        self.state = state

    def refused(self, request: Request) -> Response | None:
        token = self.state.token
        if token and request.headers.get("authorization") != f"Bearer {token}":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return None

    async def card(self, request: Request) -> Response:
        return JSONResponse({
            "name": "echo agent", "description": "echoes", "version": "1.0.0",
            "protocolVersion": "0.3.0", "url": f"{self.state.base}/a2a",
            "preferredTransport": "JSONRPC", "capabilities": {"streaming": True},
            "defaultInputModes": ["text/plain"], "defaultOutputModes": ["text/plain"],
            "skills": [],
        })  # fmt: skip

    async def a2a(self, request: Request) -> Response:
        if (no := self.refused(request)) is not None:
            return no
        message = await request.json()
        self.state.received.append({**message, "headers": dict(request.headers)})
        rid, method, params = message.get("id"), message.get("method"), message.get("params", {})
        if method in ("message/send", "message/stream"):
            task = _task(f"task-{len(self.state.tasks) + 1}", params["message"])
            self.state.tasks[task["id"]] = task
            return JSONResponse(_rpc(rid, task)) if method == "message/send" else _stream(rid, task)
        if method == "tasks/get":
            found = self.state.tasks.get(params.get("id"))
            if found is None:
                return JSONResponse(_error(rid, -32001, "Task not found"))
            return JSONResponse(_rpc(rid, found))
        return JSONResponse(_error(rid, -32601, "Method not found"))

    async def mcp(self, request: Request) -> Response:
        if (no := self.refused(request)) is not None:
            return no
        sessions = self.state.sessions
        session = request.headers.get("mcp-session-id") or ""
        if request.method == "DELETE":
            if session in sessions:
                sessions[session] = "ended"
            return Response(status_code=200)
        message = await request.json()
        self.state.received.append({**message, "headers": dict(request.headers)})
        rid, method, params = message.get("id"), message.get("method"), message.get("params", {})
        if method == "initialize":
            session = f"session-{len(sessions) + 1}"
            sessions[session] = "open"
            result = {"protocolVersion": params["protocolVersion"], "capabilities": {"tools": {}},
                      "serverInfo": {"name": "adder", "version": "1"}}  # fmt: skip
            return JSONResponse(_rpc(rid, result), headers={"Mcp-Session-Id": session})
        if sessions.get(session) not in ("open", "initialized"):
            return JSONResponse(_error(rid, -32600, "no such session"), status_code=404)
        if not request.headers.get("mcp-protocol-version"):
            return JSONResponse(_error(rid, -32600, "no MCP-Protocol-Version"), status_code=400)
        if method == "notifications/initialized":
            sessions[session] = "initialized"
            return Response(status_code=202)
        if sessions[session] != "initialized":
            return JSONResponse(_error(rid, -32600, "not initialized"), status_code=400)
        return await self.mcp_method(rid, method, params)

    async def mcp_method(self, rid: Any, method: str, params: dict[str, Any]) -> Response:
        if method == "tools/list":
            tool = {"name": "add", "inputSchema": {"type": "object", "properties": {
                "a": {"type": "number"}, "b": {"type": "number"}}}}  # fmt: skip
            return JSONResponse(_rpc(rid, {"tools": [tool]}))
        if method == "tools/call" and params.get("name") == "add":
            total = params["arguments"]["a"] + params["arguments"]["b"]
            progress = {"jsonrpc": "2.0", "method": "notifications/progress",
                        "params": {"progressToken": 1, "progress": 1}}  # fmt: skip
            result = {"content": [{"type": "text", "text": str(total)}],
                      "structuredContent": {"sum": total}, "isError": False}  # fmt: skip
            return _sse([progress, _rpc(rid, result)])
        if method == "tools/call" and params.get("name") == "slow":
            with suppress(TimeoutError):
                await asyncio.wait_for(self.state.release.wait(), SLOW_SECONDS)
            return JSONResponse(_rpc(rid, {"content": []}))
        return JSONResponse(_error(rid, -32602, f"Unknown tool or method: {method}"))


def create_app(state: AgentState) -> Starlette:
    """The agent and the MCP server on one app."""
    servers = _Servers(state)
    return Starlette(routes=[
        Route("/.well-known/agent-card.json", servers.card),
        Route("/a2a", servers.a2a, methods=["POST"]),
        Route("/mcp", servers.mcp, methods=["POST", "DELETE"]),
    ])  # fmt: skip


@asynccontextmanager
async def serve_agents(token: str | None = TOKEN) -> AsyncIterator[AgentState]:
    """Serve the app in this event loop until the block ends."""
    state = AgentState(token=token)
    async with serve_app(create_app(state)) as base:
        state.base = base
        try:
            yield state
        finally:
            state.release.set()


@contextmanager
def agents_in_thread(token: str | None = TOKEN) -> Iterator[AgentState]:
    """Serve the app on a thread of its own (for tests that run tideflow as a process)."""
    state = AgentState(token=token)
    with serve_in_thread(create_app(state), "the agent and MCP server") as base:
        state.base = base
        yield state
