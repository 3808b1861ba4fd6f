"""The 1.0 ``listen`` task on scripted events: strategies, filters, correlation, read, foreach."""

from __future__ import annotations

from typing import Any

import yaml

from tideflow.runtime.dsl1 import Interpreter
from tideflow.runtime.effects import EventWait
from tideflow.runtime.fake import ScriptedEffects
from tideflow.runtime.result import Completed, Failed
from tideflow.workflow.dsl1 import load_document

HEAD = "document: {dsl: '1.0.3', namespace: test, name: listen, version: '1.0.0'}\n"
TEMP = "com.hospital.temperature"
BPM = "com.hospital.bpm"
OUT = "com.hospital.checked-out"


def event(kind: str, number: int, **data: Any) -> dict[str, Any]:
    return {"type": kind, "source": "/ward", "id": str(number), "data": data}


async def listen(text: str, events: list[dict[str, Any]], data: Any = None) -> Any:
    model, _ = load_document(yaml.safe_load(HEAD + text))
    effects = ScriptedEffects(events=events)
    result = await Interpreter(model).run(data, effects)
    return result, [r.key for r in effects.requests if isinstance(r, EventWait)]


async def test_one_skips_events_whose_data_fails_the_filter():
    result, keys = await listen(
        """
do:
  - fever:
      listen:
        to:
          one: {with: {type: com.hospital.temperature, data: '${ .temperature > 38 }'}}
""",
        [event(TEMP, 1, temperature=37), event(TEMP, 2, temperature=39)],
    )
    assert isinstance(result, Completed)
    assert result.output == [{"temperature": 39}]
    assert keys == ["fever/events", "fever/events:2"]


async def test_all_takes_one_event_per_filter_read_as_envelopes():
    result, _ = await listen(
        f"""
do:
  - both:
      listen:
        to:
          all:
            - with: {{type: {TEMP}}}
            - with: {{type: {BPM}}}
        read: envelope
""",
        [event(BPM, 1, bpm=50), event(TEMP, 2, temperature=40)],
    )
    assert [e["id"] for e in result.output] == ["2", "1"]


async def test_any_until_an_expression_over_the_consumed_events():
    result, _ = await listen(
        """
do:
  - gossip:
      listen:
        to:
          any: []
          until: '( . | length ) > 2'
""",
        [event("a", 1, n=1), event("b", 2, n=2), event("c", 3, n=3), event("d", 4, n=4)],
    )
    assert result.output == [{"n": 1}, {"n": 2}, {"n": 3}]


async def test_any_until_an_event_of_another_strategy_which_is_not_consumed():
    result, _ = await listen(
        f"""
do:
  - watch:
      listen:
        to:
          any:
            - with: {{type: {TEMP}}}
          until:
            one: {{with: {{type: {OUT}}}}}
""",
        [event(TEMP, 1, temperature=38), event(TEMP, 2, temperature=39), event(OUT, 3)],
    )
    assert result.output == [{"temperature": 38}, {"temperature": 39}]


async def test_correlation_keeps_the_first_value_or_the_expected_one():
    text = f"""
do:
  - readings:
      listen:
        to:
          all:
            - with: {{type: {TEMP}}}
              correlate: {{room: {{from: .data.room}}}}
            - with: {{type: {BPM}}}
              correlate: {{room: {{from: .data.room}}}}
"""
    events = [event(TEMP, 1, room="a"), event(BPM, 2, room="b"), event(BPM, 3, room="a")]
    result, _ = await listen(text, events)
    assert [r["room"] for r in result.output] == ["a", "a"]
    expected = f"""
do:
  - readings:
      listen:
        to:
          one:
            with: {{type: {TEMP}}}
            correlate: {{room: {{from: .data.room, expect: '${{ .room }}'}}}}
"""
    result, _ = await listen(expected, [event(TEMP, 1, room="a"), event(TEMP, 2, room="b")],
                             {"room": "b"})  # fmt: skip
    assert result.output == [{"room": "b"}]


async def test_foreach_runs_its_tasks_for_each_consumed_event():
    result, _ = await listen(
        """
do:
  - collect:
      listen:
        to:
          any: []
          until: '( . | length ) == 2'
      foreach:
        item: reading
        at: i
        do:
          - note: {set: {n: '${ $reading.n * 10 }', at: '${ $i }'}}
""",
        [event("a", 1, n=1), event("b", 2, n=2)],
    )
    assert result.output == [{"n": 10, "at": 0}, {"n": 20, "at": 1}]


async def test_no_event_in_time_is_a_timeout_error():
    model, _ = load_document(
        yaml.safe_load(HEAD + "do:\n  - w: {listen: {to: {one: {with: {type: never}}}}}\n")
    )
    result = await Interpreter(model).run(None, ScriptedEffects(expire=["w/events"]))
    assert isinstance(result, Failed)
    assert result.error.code == "408"
