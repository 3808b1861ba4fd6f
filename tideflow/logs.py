"""The server's log: its lines as text or as JSON, and the line of a failed instance.

Pure formatting, no I/O of its own: :func:`configure` attaches one stderr handler
to Tideflow's and uvicorn's loggers; :func:`failure_line` words a failed instance.
An error's message is left out of the failure line (it may quote workflow data):
the id finds the whole error (``tideflow instances show ID``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal

import orjson

LogFormat = Literal["text", "json"]
_LOGGERS: Final = ("tideflow", "uvicorn")
"""Loggers given the handler (``uvicorn.error`` and ``uvicorn.access`` propagate to ``uvicorn``)."""
_STANDARD: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (UTC, ``Z``), ``level``, ``logger``,
    ``message``, the fields passed as ``extra=`` and, with an exception, ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line |= {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure(level: str, log_format: LogFormat, *, access_log: bool = False) -> None:
    """Send Tideflow's and uvicorn's lines to stderr, as text (uvicorn's look) or JSON;
    uvicorn's line per request only under ``access_log``."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    for name, shown in (("uvicorn.error", True), ("uvicorn.access", access_log)):
        child = logging.getLogger(name)
        child.handlers = []
        child.propagate = shown
        child.disabled = not shown


def failure_fields(
    instance_id: str, workflow_id: str, state: str | None, error: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The fields of a failed instance's log line."""
    error = error or {}
    code = error.get("code") or error.get("name") or error.get("type") or "unknown"
    return {
        "instance": instance_id,
        "workflow": workflow_id,
        "state": state or error.get("state") or "",
        "error": str(code),
    }


def failure_line(fields: Mapping[str, Any]) -> str:
    """``instance ID failed: workflow W, state S, error CODE``."""
    return (
        f"instance {fields['instance']} failed: workflow {fields['workflow']}, "
        f"state {fields['state'] or '-'}, error {fields['error']}"
    )
