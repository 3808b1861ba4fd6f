"""Tideflow runtime: the pure interpreter, the Effects a host supplies, run outcomes.

Hosts live in :mod:`tideflow.runtime.hosts`, function invokers in
:mod:`tideflow.runtime.functions`; see ``docs/interpreter.md``.
"""

from __future__ import annotations

from tideflow.runtime.effects import (
    Deadline,
    Effects,
    EventEmit,
    EventSpec,
    EventWait,
    FunctionCall,
    Pace,
    SleepRequest,
    SubflowCall,
)
from tideflow.runtime.fake import ScriptedEffects
from tideflow.runtime.interpreter import Interpreter
from tideflow.runtime.recording import RecordingEffects, ReplayEffects
from tideflow.runtime.result import (
    Completed,
    ContinuedAs,
    Failed,
    RunResult,
    Step,
    Terminated,
    WorkflowError,
)
from tideflow.runtime.state import InstanceState

__all__ = [
    "Completed",
    "ContinuedAs",
    "Deadline",
    "Effects",
    "EventEmit",
    "EventSpec",
    "EventWait",
    "Failed",
    "FunctionCall",
    "InstanceState",
    "Interpreter",
    "Pace",
    "RecordingEffects",
    "ReplayEffects",
    "RunResult",
    "ScriptedEffects",
    "SleepRequest",
    "Step",
    "SubflowCall",
    "Terminated",
    "WorkflowError",
]
