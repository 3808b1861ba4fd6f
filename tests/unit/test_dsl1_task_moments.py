"""``$task.startedAt``: each task's start as a 1.0 date-time descriptor, read from the host clock.

Only a definition that reads it pays one clock read per task; the moment is
the host's (journaled on the durable host, so a replay sees the same one).
"""

from __future__ import annotations

from datetime import UTC, datetime

import yaml

from tideflow.runtime.dsl1 import Interpreter
from tideflow.runtime.fake import ScriptedEffects
from tideflow.runtime.result import Completed
from tideflow.workflow.dsl1 import load_document

HEAD = "document: {dsl: '1.0.3', namespace: test, name: wf, version: '1.0.0'}\n"
START = datetime(2026, 1, 1, tzinfo=UTC)


class CountingClock(ScriptedEffects):
    """Scripted effects that count the host clock reads."""

    def __init__(self) -> None:
        super().__init__(start=START)
        self.reads = 0

    def now(self) -> datetime:
        self.reads += 1
        return super().now()


async def run(text: str) -> tuple[Completed, CountingClock]:
    model, _ = load_document(yaml.safe_load(HEAD + text))
    effects = CountingClock()
    result = await Interpreter(model).run({}, effects, instance_id="i-1")
    assert isinstance(result, Completed), result
    return result, effects


async def test_each_task_sees_its_own_start_in_every_form() -> None:
    result, _ = await run("""
do:
  - pause: {wait: PT5S}
  - second:
      set: {seconds: '${ $task.startedAt.epoch.seconds }'}
      output: {as: '${ . + { ms: $task.startedAt.epoch.milliseconds } }'}
""")
    assert result.output == {
        "seconds": int(START.timestamp()) + 5,
        "ms": (int(START.timestamp()) + 5) * 1000,
    }


async def test_the_first_task_starts_when_the_workflow_does() -> None:
    result, _ = await run("""
do:
  - first:
      set: {task: '${ $task.startedAt.iso8601 }', workflow: '${ $workflow.startedAt.iso8601 }'}
""")
    assert result.output["task"] == result.output["workflow"] == "2026-01-01T00:00:00Z"


async def test_a_task_run_again_gets_a_new_start() -> None:
    result, _ = await run("""
do:
  - loop:
      for: {each: n, in: '${ [1, 2] }'}
      do:
        - nap: {wait: PT1S}
        - note: {set: '${ (.seen // []) + [$task.startedAt.epoch.seconds] | { seen: . } }'}
""")
    base = int(START.timestamp())
    assert result.output == {"seen": [base + 1, base + 2]}


async def test_a_definition_that_does_not_read_it_reads_the_clock_once() -> None:
    _, effects = await run("""
do:
  - a: {set: {x: 1}}
  - b: {set: {y: '${ $workflow.startedAt.epoch.seconds }'}}
""")
    assert effects.reads == 1  # $workflow.startedAt only
    _, reading = await run("""
do:
  - a: {set: {x: 1}}
  - b: {set: {y: '${ $task.startedAt.epoch.seconds }'}}
""")
    assert reading.reads == 3  # the workflow's start and one per task
