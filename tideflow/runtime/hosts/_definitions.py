"""Compiled workflow definitions of the durable host: one load per version, shared by its runners.

A 0.8 version is built from the resolved document stored with it at deploy
(:attr:`~tideflow.runtime.rows.WorkflowVersion.resolved`): what was validated
then, with nothing fetched again.

An interpreter -- 0.8 or 1.0, by the stored document's ``document.dsl`` -- is
compiled once per ``(workflow id, version)`` and run by
every instance of that version; the callbacks of a run (timeline rows, state
reports) are passed to :meth:`~tideflow.runtime.interpreter.Interpreter.run`,
so one cached interpreter serves any number of runners at once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

from tideflow.errors import TideflowError
from tideflow.references import resolve_definition
from tideflow.runtime.dsl1 import Interpreter as Interpreter1
from tideflow.runtime.effects import WorkflowInterpreter
from tideflow.runtime.gateway import PostgresRegistry
from tideflow.runtime.hosts.plumbing import workflow_secrets
from tideflow.runtime.interpreter import Interpreter
from tideflow.workflow.dsl1 import is_dsl1, load_document
from tideflow.workflow.loader import build_definition, parse_document
from tideflow.workflow.model import Workflow

__all__ = ["Definition", "Definitions"]

Definition = tuple[Workflow, WorkflowInterpreter]
"""A version's model and its interpreter."""


class Definitions:
    """Workflow models and interpreters by version, loaded from the registry once each.

    Args:
        registry: Where deployed definitions are stored.
        base_dir: Folder for relative function references.
        module_dirs: More folders searched for ``python:`` modules, in order.
        dialect: The interpreter dialect for every version (else the one each
            version was deployed with).
    """

    def __init__(
        self,
        registry: PostgresRegistry,
        *,
        base_dir: Path,
        module_dirs: tuple[Path, ...] = (),
        dialect: str | None = None,
    ) -> None:
        self._registry = registry
        self._base_dir = base_dir
        self._module_dirs = module_dirs
        self._dialect = dialect
        self._loading: dict[
            tuple[str, str], asyncio.Future[tuple[Workflow, WorkflowInterpreter]]
        ] = {}
        self._module_dir_cache: dict[str, Path] = {}

    async def get(self, workflow_id: str, version: str) -> Definition:
        """The workflow model and its interpreter, compiled once per version.

        Raises:
            WorkflowNotFound: No such version.
            WorkflowValidationError: The stored definition no longer loads.
        """
        key = (workflow_id, version)
        loading = self._loading.get(key)
        if loading is None:  # one load per version, however many runners ask at once
            loading = self._loading[key] = asyncio.ensure_future(self._load(*key))
        elif loading.done() and not loading.cancelled() and loading.exception() is None:
            return loading.result()  # the usual case: no shield, no await
        try:
            return await asyncio.shield(loading)
        except TideflowError:
            self._loading.pop(key, None)
            raise

    async def _load(self, workflow_id: str, version: str) -> tuple[Workflow, WorkflowInterpreter]:
        stored = await self._registry.get(workflow_id, version)
        dialect = self._dialect or dialect_of(stored.content_type)
        if is_dsl1(stored.definition):
            model, _ = load_document(stored.definition, source=workflow_id, processes=False)
            dsl1 = Interpreter1(model, secrets=workflow_secrets(model))
            # A 1.0 model and interpreter offer what the hosts read of a 0.8 pair
            # (identifier, version, secrets; run, secrets, constants).
            return cast(Workflow, model), dsl1
        source = f"workflow {workflow_id!r} version {version!r}"
        if stored.resolved is not None:  # exactly what was validated at deploy
            workflow = build_definition(stored.resolved, source=source, dialect=dialect).workflow
        else:  # deployed before resolved documents were kept: resolve the source once
            document = parse_document(stored.source_text, source)
            definition = await resolve_definition(
                document, source=source, base_dir=self._base_dir, dialect=dialect
            )
            workflow = definition.workflow
        interpreter = Interpreter(workflow, secrets=workflow_secrets(workflow), dialect=dialect)
        return workflow, interpreter

    def base_dir_for(self, operation: str) -> Path:
        """The folder a function's relative references resolve in.

        For ``python:pkg.mod:fn``: the first of ``base_dir`` and
        ``module_dirs`` holding ``pkg.py`` or ``pkg/`` (else ``base_dir``).
        """
        if not self._module_dirs or not operation.startswith("python:"):
            return self._base_dir
        top = operation[len("python:") :].split(":", 1)[0].split(".", 1)[0]
        found = self._module_dir_cache.get(top)
        if found is None:
            found = next(
                (
                    folder
                    for folder in (self._base_dir, *self._module_dirs)
                    if (folder / f"{top}.py").is_file() or (folder / top).is_dir()
                ),
                self._base_dir,
            )
            self._module_dir_cache[top] = found
        return found


def dialect_of(content_type: str) -> str | None:
    """The ``dialect`` parameter a version was deployed with (``?dialect=``), if any."""
    for part in content_type.split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip() == "dialect" and value.strip():
            return value.strip()
    return None
