"""Parts of the local host that touch files and streams: events, sub-workflows, timeline.

See :mod:`tideflow.runtime.hosts.local`.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.errors import EventsExhausted, FunctionCallError, TideflowError, WorkflowLoadError
from tideflow.runtime.effects import EventSpec, EventWait
from tideflow.runtime.functions.python import PythonFunction
from tideflow.runtime.result import Step
from tideflow.workflow import loader

_SUFFIXES = (".yaml", ".yml", ".json")


def load_functions_file(path: str | Path) -> dict[str, PythonFunction]:
    """The top-level callables of a Python file, by name (``--functions``).

    Raises:
        TideflowError: The file cannot be read or raises while it is imported.
    """
    file = Path(path)
    spec = importlib.util.spec_from_file_location(f"_tideflow_functions_{file.stem}", file)
    if spec is None or spec.loader is None or not file.is_file():
        raise TideflowError(f"--functions {file}: no such Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise TideflowError(
            f"--functions {file}: importing it failed: {type(exc).__name__}: {exc}"
        ) from exc
    return {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("_") and callable(value)
    }


def _event_matches(spec: EventSpec, event: Mapping[str, Any], bound: Mapping[str, Any]) -> bool:
    if spec.type and event.get("type") != spec.type:  # DSL 1.0 `any: []`: any type
        return False
    if spec.source is not None and event.get("source") not in (None, spec.source):
        return False
    for name, value in spec.correlation:
        expected = value if value is not None else bound.get(name)
        if name not in event or (expected is not None and str(event[name]) != str(expected)):
            return False
    return True


class EventFeed:
    """CloudEvents offered to an instance in order, with correlation bindings."""

    def __init__(self, events: Iterable[Mapping[str, Any]] = ()) -> None:
        """Args:
        events: Structured CloudEvents, in the order they are offered.
        """
        self.pending = [dict(e) for e in events]
        self.bound: dict[str, Any] = {}

    def _first(
        self, *specs: EventSpec, taken: Sequence[dict[str, Any]] = ()
    ) -> dict[str, Any] | None:
        """The earliest pending event, not yet ``taken``, that one of ``specs`` accepts."""
        for event in self.pending:
            if any(event is t for t in taken):
                continue
            if any(_event_matches(spec, event, self.bound) for spec in specs):
                return event
        return None

    def take(self, wait: EventWait) -> list[dict[str, Any]] | None:
        """The events that satisfy ``wait``, removed from the feed; ``None`` on timeout.

        Raises:
            EventsExhausted: No remaining event matches and the wait has no timeout.
        """
        found = self.take_ready(wait)
        if found is None:
            if wait.timeout_seconds is not None:
                return None
            names = ", ".join(f"{s.name} (type {s.type})" for s in wait.events)
            raise EventsExhausted(
                f"state {wait.state!r} waits for {names} but no such event is left in --events"
            )
        return found

    def ready(self, wait: EventWait) -> list[dict[str, Any]] | None:
        """The pending events that satisfy ``wait`` now (left in the feed), or ``None``."""
        found: list[dict[str, Any]] = []
        if wait.all:
            for spec in wait.events:
                hit = self._first(spec, taken=found)
                if hit is None:
                    return None
                found.append(hit)
            return found
        hit = self._first(*wait.events)  # the earliest pending event any spec accepts
        return None if hit is None else [hit]

    def take_ready(self, wait: EventWait) -> list[dict[str, Any]] | None:
        """Like :meth:`ready`, but the events found leave the feed and bind correlations."""
        found = self.ready(wait)
        if found is None:
            return None
        self.pending = [e for e in self.pending if all(e is not f for f in found)]
        for event in found:
            for spec in wait.events:
                for name, value in spec.correlation:
                    if value is None and name in event:
                        self.bound.setdefault(name, event[name])
        return found


def _identity(doc: Mapping[str, Any]) -> tuple[Any, str | None]:
    """(id, version) of a 0.8 (``id``/``key``) or 1.0 (``namespace.name``) definition."""
    document = doc.get("document")
    if "states" not in doc and isinstance(document, Mapping):
        namespace, name = document.get("namespace"), document.get("name")
        if not isinstance(namespace, str) or not isinstance(name, str):
            return None, None
        version = document.get("version")
        return f"{namespace}.{name}", None if version is None else str(version)
    if "states" not in doc:
        return None, None
    version = None if doc.get("version") is None else str(doc["version"])
    return doc.get("id") or doc.get("key"), version


class SubflowIndex:
    """Workflow definitions by id and version, found in folders."""

    def __init__(self, folders: Sequence[Path]) -> None:
        """Args:
        folders: Searched in order; the first definition found for an id wins.
        """
        self._folders = [f for f in folders if f.is_dir()]
        self._index: dict[tuple[str, str | None], Path] | None = None

    def _build(self) -> dict[tuple[str, str | None], Path]:
        index: dict[tuple[str, str | None], Path] = {}
        for folder in self._folders:
            for path in sorted(folder.iterdir()):
                if path.suffix not in _SUFFIXES or not path.is_file():
                    continue
                try:
                    doc = loader.parse_document(path.read_text(encoding="utf-8"), str(path))
                except (WorkflowLoadError, OSError, UnicodeDecodeError):
                    continue
                wf_id, version = _identity(doc)
                if isinstance(wf_id, str):
                    index.setdefault((wf_id, version), path)
                    index.setdefault((wf_id, None), path)
        return index

    def find(self, workflow_id: str, version: str | None) -> Path:
        """The file defining ``workflow_id`` (at ``version`` when given).

        Raises:
            FunctionCallError: No such definition (code ``SubflowNotFound``).
        """
        if self._index is None:
            self._index = self._build()
        path = self._index.get((workflow_id, version))
        if path is None:
            where = ", ".join(str(f) for f in self._folders) or "no folder"
            shown = workflow_id + (f" version {version}" if version else "")
            raise FunctionCallError(
                f"sub-workflow {shown!r} is not defined in {where} (add --workflows DIR)",
                code="SubflowNotFound",
                retryable=False,
            )
        return path


class TimelinePrinter:
    """Prints timeline steps, stamped with elapsed time and durations."""

    def __init__(self, stream: TextIO | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        """Args:
        stream: Where to print (standard error by default).
        clock: Stamps the steps.
        """
        self._stream = stream
        self._clock = clock
        self._start = clock.monotonic()
        self._started: dict[str, float] = {}

    def __call__(self, step: Step) -> None:
        """Print one step."""
        now = self._clock.monotonic()
        if step.kind.endswith(".started") or step.kind == "state.entered":
            self._started[step.key] = now
        detail = " ".join(f"{k}={v}" for k, v in step.detail.items() if v is not None)
        ends = step.kind.endswith((".completed", ".failed", ".left"))
        began = self._started.pop(step.key, None) if ends else None
        took = f" ({(now - began) * 1000:.1f} ms)" if began is not None else ""
        state = f" [{step.state}]" if step.state else ""
        self.line(f"+{now - self._start:8.3f}s {step.kind}{state} {step.key}{took} {detail}")

    def line(self, text: str) -> None:
        """Print one line."""
        print(text.rstrip(), file=self._stream or sys.stderr, flush=True)
