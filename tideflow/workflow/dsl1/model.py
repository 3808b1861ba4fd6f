"""The immutable model of a Serverless Workflow DSL 1.0 definition.

Every class is a frozen, slotted, keyword-only dataclass. A workflow is a
:class:`TaskList` of :class:`Task` s; tasks that hold task lists (``do``,
``for``, ``fork``, ``try``/``catch``, ``listen.foreach``) have them built as
:class:`TaskList` s too, with their name lookups made once. The task's own
properties stay as the deep-frozen JSON of the document (:func:`freeze`;
:func:`thaw` gives plain values back): the interpreter reads them by the
names the 1.0 reference uses, so the model adds no second vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from tideflow.workflow._parts import freeze, thaw

__all__ = ["Task", "TaskList", "Workflow", "freeze", "thaw"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class Task:
    """One task of a task list."""

    name: str
    """The task's name (its key in the list)."""
    kind: str
    """``call``, ``do``, ``emit``, ``for``, ``fork``, ``listen``, ``raise``, ``run``,
    ``set``, ``switch``, ``try`` or ``wait``."""
    reference: str
    """JSON Pointer to the task in the document (``/do/0/tryGetPet/try/0/getPet``):
    the ``instance`` of the errors it raises, ``$task.reference``."""
    spec: Mapping[str, Any]
    """The task's properties as written (deep-frozen)."""
    lists: Mapping[str, TaskList] = field(default_factory=lambda: _EMPTY)
    """Nested task lists by their place: ``do``, ``try``, ``catch``, ``branches``, ``foreach``."""

    @property
    def then(self) -> str | None:
        """The flow directive after the task (``None`` = ``continue``)."""
        value = self.spec.get("then")
        return value if isinstance(value, str) else None

    def get(self, name: str, default: Any = None) -> Any:
        """A property of the task (deep-frozen)."""
        return self.spec.get(name, default)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskList:
    """An ordered list of tasks with a lookup by name."""

    tasks: tuple[Task, ...] = ()
    """The tasks in order."""
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {t.name: i for i, t in enumerate(self.tasks)}
        object.__setattr__(self, "_index", MappingProxyType(index))

    def position(self, name: str) -> int:
        """The index of the task named ``name``.

        Raises:
            KeyError: No task of this list has that name.
        """
        return self._index[name]

    def __len__(self) -> int:
        return len(self.tasks)


@dataclass(frozen=True, slots=True, kw_only=True)
class Workflow:
    """A whole DSL 1.0 workflow definition."""

    dsl: str
    """``document.dsl``, e.g. ``1.0.3``."""
    namespace: str
    """``document.namespace`` (a DNS label)."""
    name: str
    """``document.name`` (a DNS label)."""
    version: str
    """``document.version`` (semantic version)."""
    title: str | None = None
    """``document.title``."""
    summary: str | None = None
    """``document.summary``."""
    do: TaskList
    """The top-level task list."""
    use: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    """Reusable components (deep-frozen): errors, retries, timeouts, functions, ..."""
    input: Mapping[str, Any] | None = None
    """Workflow ``input`` (``schema``, ``from``)."""
    output: Mapping[str, Any] | None = None
    """Workflow ``output`` (``schema``, ``as``)."""
    timeout: Any = None
    """Workflow ``timeout`` (``{after}`` or the name of a ``use.timeouts`` entry)."""
    schedule: Mapping[str, Any] | None = None
    """``schedule`` (``every``, ``cron``, ``after``, ``on``)."""
    evaluate_mode: str = "strict"
    """``evaluate.mode``: ``strict`` or ``loose``."""
    document: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    """The whole definition (deep-frozen): ``$workflow.definition``."""
    spec_version: str = "1.0"
    """Which front end the model belongs to (``0.8`` models say ``0.8``)."""

    @property
    def identifier(self) -> str:
        """The registry id: ``{namespace}.{name}`` (both DNS labels: the dot is unambiguous)."""
        return f"{self.namespace}.{self.name}"

    @property
    def secrets(self) -> tuple[str, ...]:
        """Names listed in ``use.secrets``."""
        names = self.use.get("secrets", ())
        return tuple(str(n) for n in names)

    def use_entry(self, section: str, name: str) -> Any:
        """An entry of ``use.<section>`` by name, or ``None``."""
        entries = self.use.get(section)
        return entries.get(name) if isinstance(entries, Mapping) else None
