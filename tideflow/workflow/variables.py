"""The variables every workflow expression sees: ``$CONST``, ``$SECRETS``, ``$WORKFLOW``.

The host builds them once per instance (plain dicts, so they serialise and
journal like any JSON) and passes them to every evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tideflow.isotime import format_timestamp

__all__ = ["expression_variables", "workflow_variable"]


def workflow_variable(
    *,
    id: str,
    instance_id: str,
    start_time: datetime | str,
    name: str | None = None,
    version: str | None = None,
    parent_instance_id: str | None = None,
    key: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Build ``$WORKFLOW`` for one instance.

    Args:
        id: The workflow definition's ``id``.
        instance_id: The instance's unique id.
        start_time: When the instance started (an aware datetime, or RFC 3339 text).
        name: The definition's ``name``.
        version: The definition's ``version``.
        parent_instance_id: The instance that started this one as a subflow.
        key: The definition's ``key``, when it has one.
        **extra: Further fields, passed through as given.

    Returns:
        ``{"id", "instanceId", "name", "version", "startTime", ...}``; absent
        optional fields are ``None`` except ``parentInstanceId`` and ``key``,
        which are left out when not given.
    """
    started = start_time if isinstance(start_time, str) else format_timestamp(start_time)
    out: dict[str, Any] = {
        "id": id,
        "instanceId": instance_id,
        "name": name,
        "version": version,
        "startTime": started,
    }
    if parent_instance_id is not None:
        out["parentInstanceId"] = parent_instance_id
    if key is not None:
        out["key"] = key
    out.update(extra)
    return out


def expression_variables(
    constants: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
    workflow: Mapping[str, Any] | None = None,
    **others: Any,
) -> dict[str, Any]:
    """Assemble the ``variables`` mapping for :meth:`Expression.evaluate`.

    Args:
        constants: The definition's ``constants`` (``$CONST``).
        secrets: From :func:`tideflow.workflow.secrets.load_secrets` (``$SECRETS``).
        workflow: From :func:`workflow_variable` (``$WORKFLOW``).
        **others: More variables, e.g. a ForEach ``iterationParam``.
    """
    return {
        "CONST": dict(constants or {}),
        "SECRETS": dict(secrets or {}),
        "WORKFLOW": dict(workflow or {}),
        **others,
    }
