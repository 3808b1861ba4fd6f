"""Dialects: what SonataFlow accepts beyond the strict 0.8 reading.

Only one dialect exists, ``sonataflow``. Each leniency follows SonataFlow's
own code (the Apache KIE ``kogito-serverless-workflow`` modules; the table
with the source of each is in ``docs/spec-coverage.md``, section "SonataFlow
dialect"). This module does the document part, in two steps:

- :func:`apply_dialect`, before validation: ``$SECRET.name`` reads are
  declared as secrets (the workflow then names them like any other, a server
  gives only granted ones, and the interpreter offers ``$SECRET`` as the same
  object as ``$SECRETS``); an empty ``source`` of an event definition is
  dropped (SonataFlow never reads it). The validator itself relaxes the rest
  when told the dialect (``validate_document(doc, "sonataflow")``): events
  without ``kind`` in any role, consumed events without ``source``, a switch
  without ``defaultCondition``, ``functionRef.arguments`` as one expression,
  an ``eventRef`` without ``resultEventRef``.
- :func:`model_document`, after validation: conditions, data filters and
  collections take the form SonataFlow reads them in (legacy ``{{ }}``,
  string interpolation: :func:`sonataflow_forms`); every ``eventRef`` action loses
  its ``resultEventRef``. SonataFlow's ``eventRef`` action publishes its
  ``triggerEventRef`` and never waits (``CompositeContextNodeHandler`` builds
  a send-event node only), so the event a following callback or event state
  waits for is not swallowed by the action. A ``resultEventRef`` that is
  written is reported as ignored (a warning).

SonataFlow refuses a callback state without ``eventRef`` (its parser looks the
event up by name and fails on none), so nothing is inferred for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

from tideflow.errors import PathPart, Problem

DIALECTS = ("sonataflow",)
"""The dialects Tideflow knows."""
_SECRET_READ: Final = re.compile(
    r"""\$SECRET(?:\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*"([^"\\]+)"\s*\])"""
)
_IGNORED_RESULT = (
    "SonataFlow publishes the triggerEventRef and never waits for resultEventRef; "
    "the dialect does the same (wait for the answer in a callback or event state)"
)


def apply_dialect(
    doc: Mapping[str, Any], dialect: str | None
) -> tuple[dict[str, Any], list[Problem]]:
    """``doc`` with the document leniencies of ``dialect``, and the warnings they give.

    Args:
        doc: A parsed definition whose external documents are inlined.
        dialect: ``"sonataflow"`` or ``None``.
    """
    if dialect != "sonataflow":
        return dict(doc), []
    doc = _drop_empty_sources(_declare_secret_reads(doc))
    notes = [
        Problem(
            path=(*path, "eventRef", "resultEventRef"), message=_IGNORED_RESULT, severity="warning"
        )
        for path, action in _actions(doc)
        if isinstance(action.get("eventRef"), Mapping) and "resultEventRef" in action["eventRef"]
    ]
    return dict(doc), notes


def model_document(doc: Mapping[str, Any], dialect: str | None) -> Mapping[str, Any]:
    """The (valid) document the model is built from: without ``resultEventRef`` under SonataFlow."""
    if dialect != "sonataflow" or not isinstance(doc.get("states"), list):
        return doc
    from tideflow.workflow._compile import sonataflow_expressions  # compiles: only here

    doc = sonataflow_expressions(doc)
    return {**doc, "states": [_publish_only(s) for s in doc["states"]]}


def sonataflow_forms(text: str) -> tuple[str, ...]:
    """The expressions SonataFlow reads ``text`` as, in the order it tries them.

    ``JqExpression`` and ``ExpressionHandlerUtils.trimExpr``: the legacy
    ``{{ }}`` delimiters stand for ``${ }``, and text that does not compile
    but does between quotes is a string interpolation (``Hello \\(.name)``).
    """
    body = text.strip()
    if body.startswith("{{"):
        body = body[2:]
        body = body[:-2] if body.endswith("}}") else body
        text = "${ " + body.strip() + " }"
    inner = body.strip()
    if inner.startswith("${"):
        inner = inner[2:]
        inner = inner[:-1] if inner.endswith("}") else inner
        inner = inner.strip()
    if "\\(" in inner and not inner.startswith('"'):
        return (text, '"' + inner + '"')
    return (text,)


def _declare_secret_reads(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """``doc`` with the names its expressions read as ``$SECRET.name`` added to ``secrets``."""
    read = [
        match.group(1) or match.group(2)
        for text in _strings(doc)
        for match in _SECRET_READ.finditer(text)
    ]
    declared = doc.get("secrets")
    if not read or not (declared is None or isinstance(declared, list)):
        return doc
    names = list(dict.fromkeys([*(declared or []), *read]))
    return doc if names == declared else {**doc, "secrets": names}


def _drop_empty_sources(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    events = doc.get("events")
    if not isinstance(events, list):
        return doc
    cleaned = [
        {k: v for k, v in e.items() if k != "source"}
        if isinstance(e, Mapping) and isinstance(e.get("source"), str) and not e["source"].strip()
        else e
        for e in events
    ]
    return {**doc, "events": cleaned}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _actions(doc: Mapping[str, Any]) -> Iterator[tuple[tuple[PathPart, ...], Mapping[str, Any]]]:
    """Every action of every state, with its path."""
    states = doc.get("states")
    if not isinstance(states, list):
        return
    for index, state in enumerate(states):
        if not isinstance(state, Mapping):
            continue
        here: tuple[PathPart, ...] = ("states", index)
        if isinstance(state.get("action"), Mapping):
            yield (*here, "action"), state["action"]
        yield from _listed(state.get("actions"), (*here, "actions"))
        for group in ("onEvents", "branches"):
            items = state.get(group)
            if isinstance(items, list):
                for at, item in enumerate(items):
                    if isinstance(item, Mapping):
                        yield from _listed(item.get("actions"), (*here, group, at, "actions"))


def _listed(
    actions: Any, path: tuple[PathPart, ...]
) -> Iterator[tuple[tuple[PathPart, ...], Mapping[str, Any]]]:
    if isinstance(actions, list):
        for at, action in enumerate(actions):
            if isinstance(action, Mapping):
                yield (*path, at), action


def _publish_only(state: Any) -> Any:
    if not isinstance(state, Mapping):
        return state
    state = dict(state)
    if isinstance(state.get("action"), Mapping):
        state["action"] = _strip_result(state["action"])
    if isinstance(state.get("actions"), list):
        state["actions"] = [_strip_result(a) for a in state["actions"]]
    for group in ("onEvents", "branches"):
        if isinstance(state.get(group), list):
            state[group] = [
                {**item, "actions": [_strip_result(a) for a in item["actions"]]}
                if isinstance(item, Mapping) and isinstance(item.get("actions"), list)
                else item
                for item in state[group]
            ]
    return state


def _strip_result(action: Any) -> Any:
    if not isinstance(action, Mapping) or not isinstance(action.get("eventRef"), Mapping):
        return action
    ref = {k: v for k, v in action["eventRef"].items() if k != "resultEventRef"}
    return {**action, "eventRef": ref}
