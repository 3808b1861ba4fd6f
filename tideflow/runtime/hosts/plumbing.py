"""What every host does the same way: idempotency keys, bounding, auth, secrets, produced events.

The local host (:mod:`tideflow.runtime.hosts.local`) and the durable host
(:mod:`tideflow.runtime.hosts.durable`) -- and any later host -- use these,
so a workflow sees the same keys, timeouts, credentials and events whichever
host runs it.

Idempotency keys: a function call's key names the **logical call** -- the
same action of the same run of the same instance -- so every attempt and
every replay of it carries the same key (:func:`idempotency_key`). The rule
is documented once, in ``docs/runtime.md`` ("Idempotency keys and
at-least-once calls").
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, Mapping
from datetime import datetime
from typing import Any, Protocol, TypeVar

from tideflow.errors import FunctionCallError, StepTimeout
from tideflow.isotime import format_timestamp
from tideflow.runtime.effects import FunctionCall
from tideflow.runtime.functions import AuthDefinition
from tideflow.workflow.expressions import evaluate_value
from tideflow.workflow.model import Workflow, thaw
from tideflow.workflow.secrets import load_secrets

__all__ = [
    "DeclaresSecrets",
    "bounded",
    "call_arguments",
    "complete_event",
    "idempotency_key",
    "resolve_auth",
    "workflow_secrets",
]

T = TypeVar("T")
_ATTEMPT = re.compile(r"/attempt:\d+$")


def idempotency_key(instance_id: str, step_key: str, run_no: int = 1) -> str:
    """The key of a function call: the same for every attempt and replay (see the module docs).

    Args:
        instance_id: The instance.
        step_key: The call's step key (``.../action:<i>/attempt:<n>``).
        run_no: The run (``continueAs`` starts run 2, 3, ... of the same instance).
    """
    call = _ATTEMPT.sub("", step_key)
    return f"{instance_id}/{call}" if run_no == 1 else f"{instance_id}/run:{run_no}/{call}"


async def bounded(
    awaitable: Awaitable[T], seconds: float | None, key: str, kind: str = "action"
) -> T:
    """Await ``awaitable``; raise :class:`StepTimeout` when ``seconds`` pass first.

    ``None`` and ``math.inf`` mean no bound. A :class:`TimeoutError` raised
    by ``awaitable`` itself (not by this bound) propagates unchanged.
    """
    if seconds is None or math.isinf(seconds):
        return await awaitable
    limit = asyncio.timeout(max(0.0, seconds))
    try:
        async with limit:
            return await awaitable
    except TimeoutError:
        if limit.expired():
            raise StepTimeout(key=key, kind=kind) from None
        raise


def resolve_auth(
    workflow: Workflow, name: str | None, variables: Mapping[str, Any]
) -> AuthDefinition | None:
    """The workflow's auth definition ``name``, its properties evaluated.

    Args:
        workflow: The definition whose ``auth`` list is searched.
        name: The function's ``authRef`` (``None``: no auth).
        variables: ``$CONST`` and ``$SECRETS`` for the property expressions.

    Raises:
        FunctionCallError: No auth definition has that name (``InvalidAuth``).
    """
    if name is None:
        return None
    found = next((a for a in workflow.auth if a.name == name), None)
    if found is None:
        raise FunctionCallError(
            f"authRef {name!r} names no auth definition", code="InvalidAuth", retryable=False
        )
    props = evaluate_value(thaw(found.properties), {}, variables, workflow.expression_lang)
    return AuthDefinition(name=found.name, scheme=found.scheme, properties=props)


class DeclaresSecrets(Protocol):
    """A workflow model of any DSL version: it names the secrets it uses."""

    @property
    def secrets(self) -> tuple[str, ...]:
        """The names of the secrets the workflow uses."""


def workflow_secrets(
    workflow: DeclaresSecrets, given: Mapping[str, Any] | None = None
) -> Mapping[str, Any]:
    """``$SECRETS`` of a workflow: ``given``, else its declared ``TIDEFLOW_SECRET_*`` values."""
    if given is not None:
        return given
    return load_secrets(workflow.secrets, strict=False)


def call_arguments(call: FunctionCall, *, sonataflow: bool) -> Mapping[str, Any]:
    """A call's arguments; SonataFlow's dialect passes the state data when there are none."""
    if sonataflow and not call.arguments:
        return call.data if isinstance(call.data, Mapping) else {}
    return call.arguments


def complete_event(event: Mapping[str, Any], workflow: Workflow, now: datetime) -> dict[str, Any]:
    """A produced event with ``source`` (``/tideflow/<workflow id>``) and ``time`` when missing."""
    out = dict(event)
    out.setdefault("source", f"/tideflow/{workflow.identifier}")
    out.setdefault("time", format_timestamp(now))
    return out
