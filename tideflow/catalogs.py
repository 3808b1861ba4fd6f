"""The default catalog of DSL 1.0 functions: files in the operator's workflow folder.

A call ``{name}:{version}@default`` names a function of the runtime's default
catalog. Tideflow's default catalog is the ``catalog/`` folder beside the
definition -- the ``--workflows`` folder of ``tideflow serve``, the folder of
the file given to ``tideflow run`` -- laid out as the specification's catalogs
are: ``catalog/functions/{name}/{version}/function.yaml`` (or ``.json``), whose
content is a task definition (the function's body).

Functions are read once, when the definition is loaded or deployed, and put
into the document's ``use.functions`` under the call's own name, so the stored
version carries what was validated and every process runs the same thing.
Nothing else is read: the name and the version must be plain path segments
(letters, digits, ``.``, ``_``, ``-``; not ``.`` or ``..``), the file must lie
inside the folder once links are resolved, and it is at most
:data:`FUNCTION_BYTES`. Definitions deployed over HTTP name no folder, so
their default catalog calls stay refused.

A catalog of ``use.catalogs`` is remote: ``{name}:{version}@{catalog}`` is
the document at ``{endpoint}/functions/{name}/{version}/function.yaml``
(an ``http(s)`` endpoint). This module says which documents a definition
needs (:func:`remote_functions`) and puts them in (:func:`with_functions`);
:mod:`tideflow.references` fetches them, bounded and through the egress
policy, when the definition is loaded or deployed -- also into
``use.functions``, so a stored version never fetches again.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tideflow.errors import Problem, WorkflowLoadError, WorkflowValidationError
from tideflow.workflow.loader import parse_document

__all__ = [
    "CATALOG_FOLDER",
    "FUNCTION_BYTES",
    "RemoteFunction",
    "remote_functions",
    "with_default_catalog",
    "with_functions",
]

CATALOG_FOLDER = "catalog"
"""The default catalog's folder, beside the definitions."""
FUNCTION_BYTES = 256 * 1024
"""Largest function document read."""
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")


def _calls(tasks: Any, path: tuple[Any, ...]) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """``(call name, path of its call)`` of every task in a task list, nested ones too."""
    if not isinstance(tasks, list):
        return
    for index, item in enumerate(tasks):
        if not isinstance(item, Mapping):
            continue
        for name, task in item.items():
            if not isinstance(task, Mapping):
                continue
            here = (*path, index, name)
            if isinstance(task.get("call"), str):
                yield task["call"], (*here, "call")
            yield from _nested(task, here)


def _nested(
    task: Mapping[str, Any], here: tuple[Any, ...]
) -> Iterator[tuple[str, tuple[Any, ...]]]:
    yield from _calls(task.get("do"), (*here, "do"))  # do, for
    tried = task.get("try")
    if isinstance(tried, list):
        yield from _calls(tried, (*here, "try"))
    caught = task.get("catch")
    if isinstance(caught, Mapping):
        yield from _calls(caught.get("do"), (*here, "catch", "do"))
    forked = task.get("fork")
    if isinstance(forked, Mapping):
        yield from _calls(forked.get("branches"), (*here, "fork", "branches"))


def _read(folder: Path, name: str, version: str) -> tuple[Any | None, str]:
    """The function document, or ``None`` and why not."""
    if not (_SEGMENT.fullmatch(name) and _SEGMENT.fullmatch(version)) or ".." in (name, version):
        return None, "a catalog function's name and version must be plain names"
    root = (folder / CATALOG_FOLDER).resolve()
    for suffix in (".yaml", ".yml", ".json"):
        path = (root / "functions" / name / version / f"function{suffix}").resolve()
        if not path.is_relative_to(root) or not path.is_file():
            continue
        if path.stat().st_size > FUNCTION_BYTES:
            return None, f"{path.name} of {name}:{version} is larger than {FUNCTION_BYTES} bytes"
        try:
            return parse_document(path.read_text(encoding="utf-8"), str(path)), ""
        except (WorkflowLoadError, OSError, UnicodeDecodeError) as exc:
            return None, f"the default catalog's {name}:{version} does not load: {exc}"
    where = f"{CATALOG_FOLDER}/functions/{name}/{version}/function.yaml"
    return None, f"function '{name}:{version}' is not in the default catalog ({where})"


def with_default_catalog(
    document: Mapping[str, Any], folder: Path | None, source: str | None = None
) -> dict[str, Any]:
    """``document`` with each ``{name}:{version}@default`` it calls in ``use.functions``.

    Args:
        document: A parsed DSL 1.0 document.
        folder: The trusted folder whose ``catalog/`` is the default catalog
            (``None``: no catalog; the document is returned as it is).
        source: Names the document in errors.

    Raises:
        WorkflowValidationError: A called function is missing or unreadable
            (at the call's path).
    """
    if folder is None:
        return dict(document)
    wanted: dict[str, tuple[Any, ...]] = {}
    for call, path in _calls(document.get("do"), ("do",)):
        if call.endswith("@default") and not call.startswith("python:"):
            wanted.setdefault(call, path)
    if not wanted:
        return dict(document)
    declared = _use(document, "functions")
    found: dict[str, Any] = {}
    problems = []
    for call, path in wanted.items():
        if call in declared:
            continue
        name, _, version = call.removesuffix("@default").partition(":")
        function, why = _read(folder, name, version)
        if function is None:
            problems.append(Problem(path, why))
        else:
            found[call] = function
    if problems:
        raise WorkflowValidationError(problems, source=source)
    return with_functions(document, found)


@dataclass(frozen=True, slots=True)
class RemoteFunction:
    """A function of a remote catalog a definition calls."""

    call: str
    """The call's name (``name:version@catalog``), its key in ``use.functions``."""
    url: str
    """The function document's URL (empty when ``problem`` says why there is none)."""
    path: tuple[Any, ...]
    """Where the (first) call is, for problems."""
    problem: str = ""
    """Why the function cannot be fetched (then ``url`` is empty)."""


def remote_functions(document: Mapping[str, Any]) -> list[RemoteFunction]:
    """Every ``{name}:{version}@{catalog}`` ``document`` calls of a catalog of
    ``use.catalogs`` and not already in ``use.functions``, once each, with its URL."""
    catalogs, declared = _use(document, "catalogs"), _use(document, "functions")
    found: dict[str, RemoteFunction] = {}
    for call, path in _calls(document.get("do"), ("do",)):
        head, at, catalog = call.rpartition("@")
        if not at or call.startswith("python:") or call in declared or call in found:
            continue
        if catalog == "default" or catalog not in catalogs:
            continue  # the default catalog is a folder; an undeclared one is the validator's
        found[call] = _remote(call, head, catalogs[catalog], path)
    return list(found.values())


def _remote(call: str, head: str, catalog: Any, path: tuple[Any, ...]) -> RemoteFunction:
    name, _, version = head.partition(":")
    if not (_SEGMENT.fullmatch(name) and _SEGMENT.fullmatch(version)) or ".." in (name, version):
        return RemoteFunction(call, "", path, "a catalog function's name and version must be "
                              "plain names")  # fmt: skip
    endpoint = catalog.get("endpoint") if isinstance(catalog, Mapping) else None
    if isinstance(endpoint, Mapping):
        if endpoint.get("authentication") is not None:
            return RemoteFunction(call, "", path, "catalogs behind an authentication are "
                                  "not fetched by Tideflow")  # fmt: skip
        endpoint = endpoint.get("uri")
    uri = str(endpoint or "")
    if not uri.lower().startswith(("http://", "https://")):
        return RemoteFunction(call, "", path, f"catalog endpoint {uri!r} is not an http(s) URL")
    return RemoteFunction(call, f"{uri.rstrip('/')}/functions/{name}/{version}/function.yaml",
                          path)  # fmt: skip


def with_functions(document: Mapping[str, Any], functions: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` with ``functions`` (by call name) added to its ``use.functions``."""
    if not functions:
        return dict(document)
    raw_use = document.get("use")
    use: Mapping[str, Any] = raw_use if isinstance(raw_use, Mapping) else {}
    resolved = copy.deepcopy(dict(document))
    resolved["use"] = {**use, "functions": {**_use(document, "functions"), **functions}}
    return resolved


def _use(document: Mapping[str, Any], section: str) -> Mapping[str, Any]:
    """``use.{section}`` of ``document`` (empty when it has none, or not a map)."""
    use = document.get("use")
    found = use.get(section) if isinstance(use, Mapping) else None
    return found if isinstance(found, Mapping) else {}
