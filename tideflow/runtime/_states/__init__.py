"""State bodies, one module per family; :data:`RUNNERS` maps a state type to its runner.

Internal. A runner takes the run, the state, its data (after the input
filter) and its step key, and returns ``(data, exit)``: the state data before
the output filter and the :class:`~tideflow.workflow.model.Transition` or
:class:`~tideflow.workflow.model.End` to take, or ``None`` for the state's own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tideflow.runtime._context import Run
from tideflow.runtime._states import basic, events, foreach, parallel
from tideflow.workflow.model import End, Transition

Exit = Transition | End | None
Runner = Callable[[Run, Any, Any, str], Awaitable[tuple[Any, Exit]]]

RUNNERS: dict[str, Runner] = {
    "operation": basic.operation,
    "inject": basic.inject,
    "sleep": basic.sleep,
    "switch": basic.switch,
    "event": events.event,
    "callback": events.callback,
    "parallel": parallel.parallel,
    "foreach": foreach.foreach,
}
