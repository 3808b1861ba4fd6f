"""The DSL 1.0 interpreter on scripted effects: every core task, data flow, errors, keys."""

from __future__ import annotations

import asyncio
from typing import Any

import yaml

from tideflow.errors import FunctionCallError
from tideflow.runtime.dsl1 import CallTarget, Interpreter
from tideflow.runtime.effects import EventWait, FunctionCall, SleepRequest, SubflowCall
from tideflow.runtime.fake import ScriptedEffects
from tideflow.runtime.result import Completed, Failed
from tideflow.workflow.dsl1 import load_document

HEAD = "document: {dsl: '1.0.3', namespace: test, name: wf, version: '1.0.0'}\n"


def workflow(text: str) -> Any:
    model, _ = load_document(yaml.safe_load(HEAD + text))
    return model


async def run(text: str, data: Any = None, effects: ScriptedEffects | None = None) -> Any:
    effects = effects or ScriptedEffects()
    return await Interpreter(workflow(text)).run(data, effects, instance_id="i-1")


def order(result: Any) -> list[str]:
    return [s.state for s in result.timeline if s.kind == "task.started"]


async def test_flow_directives_jump_end_and_exit():
    result = await run("""
do:
  - a: {set: {v: [a]}, then: c}
  - b: {set: {v: never}}
  - c:
      do:
        - c1: {set: {v: '${ .v + ["c1"] }'}, then: exit}
        - c2: {set: {v: never}}
  - d: {set: {v: '${ .v + ["d"] }'}, then: end}
  - e: {set: {v: never}}
""")
    assert isinstance(result, Completed)
    assert result.output == {"v": ["a", "c1", "d"]}
    assert order(result) == ["a", "c", "c1", "d"]


async def test_if_skips_a_task_and_passes_its_input_on():
    result = await run("""
do:
  - maybe: {if: '.go', set: {v: ran}}
  - after: {set: {seen: '${ . }'}}
""", {"go": False})  # fmt: skip
    assert result.output == {"seen": {"go": False}}
    assert [s.kind for s in result.timeline][:2] == ["task.skipped", "task.started"]


async def test_input_output_export_and_context():
    result = await run(
        """
input: {from: '.payload'}
do:
  - first:
      input: {from: '.user'}
      set: {name: '${ .name }', raw: '${ $input }'}
      output: {as: '{ greeting: ("hi " + .name) }'}
      export: {as: '$context + { greeted: .greeting }'}
  - second:
      set: {ctx: '${ $context }', wf: '${ $workflow.input.payload.user.name }'}
output: {as: '.ctx.greeted'}
""",
        {"payload": {"user": {"name": "Ada"}}},
    )
    assert result.output == "hi Ada"


async def test_switch_matches_in_order_and_defaults():
    text = """
do:
  - pick:
      switch:
        - red: {when: '.color == "red"', then: setRed}
        - other: {then: setOther}
  - setRed: {set: {c: red}, then: end}
  - setOther: {set: {c: other}}
"""
    assert (await run(text, {"color": "red"})).output == {"c": "red"}
    assert (await run(text, {"color": "blue"})).output == {"c": "other"}


async def test_for_with_at_and_while():
    result = await run(
        """
do:
  - loop:
      for: {each: n, in: '.numbers', at: i}
      while: '(.sum // 0) < 5'
      do:
        - add: {set: {sum: '${ (.sum // 0) + $n }', last: '${ $i }'}}
""",
        {"numbers": [1, 2, 3, 4, 5]},
    )
    assert result.output == {"sum": 6, "last": 2}


async def test_fork_gives_every_output_in_order_or_the_first_when_competing():
    text = """
do:
  - both:
      fork:
        compete: {compete}
        branches:
          - slow: {call: http, with: {method: get, endpoint: 'https://slow'}}
          - fast: {set: {v: fast}}
"""
    release = asyncio.Event()

    async def slow(arguments: dict[str, Any]) -> Any:
        await release.wait()
        return "slow"

    effects = ScriptedEffects({"slow": slow})
    assert (await run(text.replace("{compete}", "true"), None, effects)).output == {"v": "fast"}
    release.set()
    effects = ScriptedEffects({"slow": slow})
    result = await run(text.replace("{compete}", "false"), None, effects)
    assert result.output == ["slow", {"v": "fast"}]


async def test_raise_inline_and_reusable_errors_fault_with_the_instance():
    inline = await run("""
do:
  - boom: {raise: {error: {type: 'https://x/e', status: 418, title: 'Teapot'}}}
""")  # fmt: skip
    assert isinstance(inline, Failed)
    assert inline.error.details == {
        "type": "https://x/e", "status": 418, "title": "Teapot", "instance": "/do/0/boom",
    }  # fmt: skip
    reusable = await run("""
use:
  errors:
    notFound: {type: 'https://x/nf', status: 404, detail: '${ "no " + .id }'}
do:
  - outer:
      do:
        - boom: {raise: {error: notFound}}
""", {"id": "42"})  # fmt: skip
    assert reusable.error.details["detail"] == "no 42"
    assert reusable.error.details["instance"] == "/do/0/outer/do/0/boom"
    assert (reusable.error.code, reusable.error.state) == ("404", "/do/0/outer/do/0/boom")


TRY = """
do:
  - guard:
      try:
        - fetch: {call: http, with: {method: get, endpoint: 'https://example.com/{id}'}}
      catch:
        errors:
          with: {type: 'https://serverlessworkflow.io/spec/1.0.0/errors/communication',
                 status: 503}
        as: failure
        retry:
          delay: {seconds: 2}
          backoff: {exponential: {}}
          limit: {attempt: {count: 2}}
        do:
          - handle: {set: {error: '${ $failure }'}}
"""


async def test_try_retries_with_back_off_then_runs_catch_do():
    def fail(arguments: dict[str, Any]) -> Any:
        raise FunctionCallError("down", code="503")

    effects = ScriptedEffects({"fetch": fail})
    result = await run(TRY, {"id": 7}, effects)
    assert result.output["error"]["status"] == 503
    assert result.output["error"]["instance"] == "/do/0/guard/try/0/fetch"
    sleeps = [(r.key, r.seconds) for r in effects.requests if isinstance(r, SleepRequest)]
    assert sleeps == [("guard/attempt:1/backoff", 2.0), ("guard/attempt:2/backoff", 4.0)]
    calls = [r for r in effects.requests if isinstance(r, FunctionCall)]
    assert [c.key for c in calls] == [
        "guard/try:1/fetch/call", "guard/try:2/fetch/call", "guard/try:3/fetch/call",
    ]  # fmt: skip
    assert calls[0].arguments["uri"] == "https://example.com/7"
    assert calls[0].function == CallTarget(
        name="fetch", type="http", operation="GET https://example.com/7"
    )


async def test_an_error_the_filter_does_not_match_is_not_caught():
    def fail(arguments: dict[str, Any]) -> Any:
        raise FunctionCallError("missing", code="404")

    result = await run(TRY, {"id": 7}, ScriptedEffects({"fetch": fail}))
    assert isinstance(result, Failed)
    assert result.error.name == "communication"
    assert result.error.code == "404"


async def test_catch_when_and_except_when():
    text = """
do:
  - guard:
      try:
        - boom: {raise: {error: {type: 'https://x/e', status: 400}}}
      catch:
        when: '$error.status == 400'
        exceptWhen: '.keep'
"""
    assert isinstance(await run(text, {"keep": False}), Completed)
    assert isinstance(await run(text, {"keep": True}), Failed)


async def test_wait_emit_and_listen_go_through_the_host():
    effects = ScriptedEffects(
        events=[{"type": "com.example.done", "source": "/x", "id": "1", "data": {"ok": True}}]
    )
    result = await run(
        """
do:
  - pause: {wait: {minutes: 1, seconds: 30}}
  - tell:
      emit: {event: {with: {source: /wf, type: com.example.asked, data: {q: '${ .q }'}}}}
  - hear:
      listen: {to: {one: {with: {type: com.example.done}}}}
""",
        {"q": "why"},
        effects,
    )
    assert result.output == [{"ok": True}]
    assert effects.emitted[0]["data"] == {"q": "why"}
    assert effects.emitted[0]["id"]
    assert effects.emitted[0]["specversion"] == "1.0"
    waits = [r for r in effects.requests if isinstance(r, EventWait)]
    assert [(w.key, w.events[0].type) for w in waits] == [("hear/events", "com.example.done")]
    sleeps = [r.seconds for r in effects.requests if isinstance(r, SleepRequest)]
    assert sleeps == [90.0]


async def test_custom_and_python_functions_and_subflows():
    effects = ScriptedEffects(
        {"python:mymod:double": lambda a: a["n"] * 2}, subflows={"test.child": {"child": True}}
    )
    result = await run(
        """
use:
  functions:
    greet:
      set: {greeting: '${ "hello " + .name }'}
do:
  - hello: {call: greet, with: {name: '${ .who }'}}
  - twice: {call: 'python:mymod:double', with: {n: 21}, output: {as: '{ n: . }'}}
  - child:
      run: {workflow: {namespace: test, name: child, version: '1.0.0', input: {n: '${ .n }'}}}
""",
        {"who": "Ada"},
        effects,
    )
    assert result.output == {"child": True}
    subflow = next(r for r in effects.requests if isinstance(r, SubflowCall))
    assert (subflow.workflow_id, subflow.version) == ("test.child", "1.0.0")
    assert subflow.input == {"n": 42}
    hello = [s for s in result.timeline if s.state == "greet"]
    assert hello
    assert hello[0].key == "hello/greet"


async def test_task_and_workflow_timeouts_are_timeout_errors():
    text = """
use:
  timeouts:
    short: {after: PT1S}
do:
  - slow: {wait: PT1H, timeout: short}
"""
    result = await run(text, None, ScriptedEffects(expire=["slow/timeout"]))
    assert result.error.details["type"].endswith("/errors/timeout")
    assert (result.error.code, result.error.state) == ("408", "/do/0/slow")
    whole = await run(
        "timeout: {after: PT1M}\ndo:\n  - slow: {wait: PT1H}\n",
        None,
        ScriptedEffects(expire=["workflow/timeout"]),
    )
    assert whole.error.details["status"] == 408


async def test_expression_failures_are_expression_errors():
    result = await run("do:\n  - bad: {set: {v: '${ .a.b.c + 1 }'}}\n", {"a": "text"})
    assert result.error.details["type"].endswith("/errors/expression")
    assert result.error.details["instance"] == "/do/0/bad"


async def test_same_input_same_effects_same_keys():
    async def keys() -> list[tuple[str, str]]:
        effects = ScriptedEffects({"fetch": {"ok": 1}})
        await run(TRY + "  - tell: {emit: {event: {with: {source: /s, type: t}}}}\n", {"id": 1},
                  effects)  # fmt: skip
        return [(kind, key) for kind, key, _ in effects.log] + [
            ("event", e["id"]) for e in effects.emitted
        ]

    first = await keys()
    assert len(first) > 2  # calls and the emitted event, not an empty log
    assert first == await keys()


async def test_a2a_and_mcp_calls_go_through_the_host_evaluated():
    effects = ScriptedEffects({"ask": {"id": "t"}, "tool": {"tools": []}})
    result = await run("""
do:
  - ask:
      call: a2a
      with:
        method: message/send
        server: {uri: 'https://agents.example/{team}', authentication: {bearer: {token: k}}}
        parameters: {message: {parts: [{kind: text, text: '${ .q }'}]}}
  - tool:
      call: mcp
      with:
        method: tools/list
        timeout: PT2S
        transport: {http: {endpoint: 'https://m.example/mcp', headers: {x-q: '${ $input.id }'}}}
""", {"q": "hi", "team": "red"}, effects)  # fmt: skip
    assert isinstance(result, Completed), result
    calls = [c for c in effects.requests if isinstance(c, FunctionCall)]
    assert [(c.function.type, c.function.operation) for c in calls] == [
        ("a2a", "message/send https://agents.example/red"),
        ("mcp", "tools/list https://m.example/mcp"),
    ]
    assert calls[0].arguments == {
        "method": "message/send", "server": "https://agents.example/red",
        "authentication": {"bearer": {"token": "k"}},
        "parameters": {"message": {"parts": [{"kind": "text", "text": "hi"}]}},
    }  # fmt: skip
    assert calls[1].arguments["headers"] == {"x-q": "t"}
    assert calls[1].arguments["protocolVersion"] == "2025-06-18"
    assert calls[1].timeout_seconds == 2.0


async def test_input_and_output_schemas_are_checked():
    text = """
input:
  schema:
    format: json
    document: {type: object, required: [id], properties: {id: {type: integer}}}
do:
  - shape:
      set: {id: '${ .id }'}
      output:
        schema: {document: {type: object, properties: {id: {type: integer, maximum: 9}}}}
"""
    assert (await run(text, {"id": 3})).output == {"id": 3}
    missing = await run(text, {"name": "x"})
    assert missing.error.details["type"].endswith("/errors/validation")
    assert missing.error.details["instance"] == "/"
    too_big = await run(text, {"id": 12})
    assert too_big.error.details["instance"] == "/do/0/shape"
    assert "at /id" in too_big.error.details["detail"]


async def test_a_policy_read_from_a_missing_secret_is_an_authorization_error():
    text = """
use:
  secrets: [creds]
do:
  - fetch:
      call: http
      with:
        method: get
        endpoint: {uri: 'https://example.com/x', authentication: {basic: {use: creds}}}
"""
    result = await run(text, None, ScriptedEffects({"fetch": {"ok": True}}))
    assert result.error.details["type"].endswith("/errors/authorization")
    assert result.error.code == "403"
    model = workflow(text)
    found = ScriptedEffects({"fetch": {"ok": True}})
    secret = '{"username": "ada", "password": "pw"}'
    done = await Interpreter(model, secrets={"creds": secret}).run(None, found)
    assert isinstance(done, Completed)
    assert done.output == {"ok": True}
    call = next(r for r in found.requests if isinstance(r, FunctionCall))
    assert call.arguments["authentication"] == {"basic": {"username": "ada", "password": "pw"}}


EXTENDED = """
use:
  extensions:
    - mock:
        extend: call
        when: ($task.with.endpoint.uri // $task.with.endpoint) | startswith("https://mocked")
        before:
          - canned: {set: {mocked: true}, then: exit}
    - audit:
        extend: all
        after:
          - note: {emit: {event: {with: {source: /audit, type: audited}}}}
do:
  - real: {call: http, with: {method: get, endpoint: 'https://real.example/x'}}
  - fake: {call: http, with: {method: get, endpoint: {uri: 'https://mocked.example/y'}}}
"""


async def test_extensions_run_before_and_after_the_tasks_they_extend():
    effects = ScriptedEffects({"real": {"real": True}})
    result = await run(EXTENDED, None, effects)
    assert result.output == {"mocked": True}
    calls = [r.name for r in effects.requests if isinstance(r, FunctionCall)]
    assert calls == ["real"]  # the mocked call never reached the host
    assert [e["type"] for e in effects.emitted] == ["audited", "audited"]
    keys = [key for kind, key, _ in effects.log if kind == "emit"]
    assert keys == [
        "real/extension:audit/after/note/event",
        "fake/extension:audit/after/note/event",
    ]


async def test_loose_mode_evaluates_every_string_and_keeps_what_does_not_evaluate():
    body = """
do:
  - shape:
      set:
        sum: .x + 1
        text: hello world
        url: https://example.com/a
        wrapped: ${ .x }
"""
    loose = await run("evaluate: {mode: loose}\n" + body, {"x": 1})
    assert loose.output == {"sum": 2, "text": "hello world", "url": "https://example.com/a",
                            "wrapped": 1}  # fmt: skip
    strict = await run(body, {"x": 1})
    assert strict.output["sum"] == ".x + 1"
