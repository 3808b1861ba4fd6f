"""Which ``python:`` modules a server may import, checked at deploy and at call time.

A ``python:package.module:function`` operation imports ``package.module``.
On the author's own machine that is the point (``tideflow run`` uses
:meth:`PythonPolicy.allow_all`), but a server must not import whatever a
definition sent over HTTP names: ``python:subprocess:run`` would run any
command. On a server (:meth:`PythonPolicy.for_server`) a module may be
imported only when

- it is named, or lies under a name, in the allow list
  (``TIDEFLOW_PYTHON_MODULES``, ``tideflow serve --allow-python``): ``pkg``
  allows ``pkg`` and ``pkg.*``, not ``pkgx``; or
- the file an import of it would load lies inside a trusted folder (the
  ``--workflows`` folders: the operator put those files there). The file is
  found the way the import finds it -- already imported modules, then the
  interpreter's search path, then the folders -- with :mod:`importlib`'s
  finders, which run none of the module's code (nor its packages').
  Installed code (standard library, site-packages) never counts, even below
  a folder (a virtual environment inside a project folder).

A server also calls only public names: no part of the function's attribute
path may start with ``_``.

The policy is checked when a definition is deployed (a refused module is a
validation problem at ``functions[i].operation``) and again by the durable
host before each call (a definition stored before the policy changed fails
the call with ``FORBIDDEN`` instead of importing anything).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import site
import sys
import sysconfig
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from tideflow.errors import FunctionCallError, InvalidArgument, Problem

if TYPE_CHECKING:
    from tideflow.runtime.functions.types import Invocation
    from tideflow.workflow.model import FunctionDef

__all__ = ["PythonPolicy", "how_to_allow", "is_python_function", "module_file"]

FORBIDDEN = "FORBIDDEN"
"""The error code of a call the policy refuses."""


def is_python_function(operation: str, type_: str | None) -> bool:
    """Whether the invoker would import a module for this function (as it dispatches)."""
    return operation.startswith("python:") and (type_ or "rest") in ("rest", "custom")


def valid_module_name(name: str) -> bool:
    """Whether ``name`` is an absolute dotted module name (``pkg.mod``)."""
    return bool(name) and all(part.isidentifier() for part in name.split("."))


@dataclass(frozen=True, slots=True, kw_only=True)
class PythonPolicy:
    """Which modules ``python:`` functions may import (see the module docs).

    Attributes:
        modules: Allowed module names; each also allows its submodules.
        folders: Trusted folders (resolved): modules whose file lies inside are allowed.
        allow_all: Allow everything (``tideflow run``: the user runs their own file).
        scripts: Allow DSL 1.0 ``run: script`` Python code (``serve --allow-scripts``).
    """

    modules: tuple[str, ...] = ()
    folders: tuple[Path, ...] = ()
    allow_all: bool = False
    scripts: bool = False

    def __post_init__(self) -> None:
        # Resolved once, so a module's resolved file compares with them.
        object.__setattr__(self, "folders", tuple(Path(f).resolve() for f in self.folders))
        for name in self.modules:
            if not valid_module_name(name):
                raise InvalidArgument(
                    f"{name!r} is not a Python module name (such as 'pkg' or 'pkg.mod')",
                    argument="allow-python",
                )

    @classmethod
    def everything(cls) -> PythonPolicy:
        """The policy of ``tideflow run``: every module may be imported."""
        return cls(allow_all=True)

    @classmethod
    def for_server(
        cls, modules: Iterable[str] = (), folders: Iterable[Path] = (), *, scripts: bool = False
    ) -> PythonPolicy:
        """A server's policy: the allow list plus the trusted folders (and scripts, if allowed).

        Raises:
            InvalidArgument: A name in ``modules`` is not a module name.
        """
        names = tuple(dict.fromkeys(m.strip() for m in modules if m.strip()))
        return cls(modules=names, folders=tuple(Path(f) for f in folders), scripts=scripts)

    def script_refusal(self) -> str | None:
        """Why a DSL 1.0 ``run: script`` (Python, JavaScript) may not run here; ``None`` if it may.

        A script is code of any kind, written in the definition: no module to
        check against the allow list. ``tideflow run`` runs it (the user's own
        file); a server only when its operator allows scripts.
        """
        if self.allow_all or self.scripts:
            return None
        return (
            "a script is code run with the server's rights: this server runs none "
            "(start it with --allow-scripts, or use a python: function of an allowed module)"
        )

    def allows_module(self, name: str) -> bool:
        """Whether ``name`` may be imported: allowed by name, or its file is in a folder."""
        if self.allow_all:
            return True
        if not valid_module_name(name):
            return False
        if any(name == m or name.startswith(m + ".") for m in self.modules):
            return True
        return self.in_folders(name)

    def in_folders(self, name: str) -> bool:
        """Whether the file ``import name`` would load lies inside a trusted folder.

        Installed code (the standard library, site-packages) never counts,
        even inside a folder (a virtual environment in a project folder).
        """
        found = module_file(name, self.folders)
        return found is not None and _trusted_file(found, self.folders)

    def refusal(self, operation: str) -> str | None:
        """Why ``operation`` (``python:module:function``) may not run here; ``None`` if it may."""
        if self.allow_all:
            return None
        module, sep, attr = operation.removeprefix("python:").partition(":")
        if not sep or not module or not attr:
            return f"operation {operation!r} is not 'python:package.module:function'"
        if not valid_module_name(module):
            return f"{module!r} in {operation!r} is not a Python module name"
        if any(part.startswith("_") for part in attr.split(".")):
            return f"{attr!r} in {operation!r} is private: a server calls only public names"
        if not self.allows_module(module):
            importable = module_file(module, self.folders) is not None
            unknown = "" if importable else f" nor can it import it ({_NOT_FOUND})"
            return (
                f"python module {module!r} is not allowed on this server{unknown}; "
                f"{how_to_allow(module, importable=importable)}"
            )
        return None

    def unimportable(self, operation: str) -> str | None:
        """Why an allowed ``operation``'s module will not be found when it is called; ``None``
        when the server finds its file (or the operation is refused anyway)."""
        module = operation.removeprefix("python:").partition(":")[0]
        if self.allow_all or self.refusal(operation) is not None:
            return None
        if module_file(module, self.folders) is not None or module in sys.modules:
            return None
        return (
            f"python module {module!r} is allowed but this server cannot import it: "
            f"{_NOT_FOUND}; its calls will fail with FunctionNotFound until it can"
        )

    def problems(self, functions: Sequence[FunctionDef]) -> list[Problem]:
        """A validation problem at ``functions[i].operation`` for each refused function."""
        found = []
        for index, function in enumerate(functions):
            if not is_python_function(function.operation, function.type):
                continue
            reason = self.refusal(function.operation)
            if reason is not None:
                found.append(Problem(("functions", index, "operation"), reason))
        return found

    def warnings(self, functions: Sequence[FunctionDef]) -> list[Problem]:
        """A warning at ``functions[i].operation`` for each allowed module the server
        cannot import (allowed by name, not installed nor in a ``--workflows`` folder)."""
        found = []
        for index, function in enumerate(functions):
            if is_python_function(function.operation, function.type):
                reason = self.unimportable(function.operation)
                if reason is not None:
                    found.append(Problem(("functions", index, "operation"), reason, "warning"))
        return found

    def call_error(self, invocation: Invocation) -> FunctionCallError | None:
        """The error a refused call fails with (``FORBIDDEN``, not retryable); else ``None``."""
        if invocation.type == "script":
            reason = self.script_refusal()
        elif not is_python_function(invocation.operation, invocation.type):
            return None
        else:
            reason = self.refusal(invocation.operation)
        if reason is None:
            return None
        message = f"function {invocation.name!r} refused: {reason}"
        return FunctionCallError(message, code=FORBIDDEN, retryable=False)

    def guard(
        self, invocation: Invocation, invoke: Callable[[Invocation], Awaitable[Any]]
    ) -> Awaitable[Any]:
        """``invoke(invocation)``, or an awaitable failing with the refusal (nothing imported)."""
        error = self.call_error(invocation)
        return invoke(invocation) if error is None else _raise(error)


_NOT_FOUND: Final = (
    "it is neither installed, nor on the server's PYTHONPATH, nor in a --workflows folder"
)


def how_to_allow(module: str, *, importable: bool) -> str:
    """What an operator does to let a server call ``module``'s functions, as an imperative
    -- the whole of it: a module the server cannot find needs its file where the server
    imports from, not only its name on the allow list."""
    allow = f"--allow-python {module} (or TIDEFLOW_PYTHON_MODULES={module})"
    if importable:
        return f"start tideflow serve with {allow}"
    file = module.replace(".", "/") + ".py"
    return (
        f"put {file} in a folder and start tideflow serve with --workflows FOLDER (which "
        f"deploys that folder's definitions and allows its modules), or install the module "
        f"and start the server with {allow}"
    )


@functools.cache
def _library_dirs() -> tuple[Path, ...]:
    """Where this interpreter's standard library and installed packages live."""
    paths = sysconfig.get_paths()
    found = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    found.update(site.getsitepackages())
    found.add(site.getusersitepackages())
    return tuple(Path(p).resolve() for p in sorted(found))


async def _raise(error: FunctionCallError) -> Any:
    raise error


def module_file(name: str, folders: Sequence[Path] = ()) -> Path | None:
    """The source file ``import name`` would load, found without running any code.

    The search follows the import: a module already imported is the one
    used; else the interpreter's search path (``sys.path``, installed
    finders) comes first, then ``folders``. Packages along the way are not
    executed: their submodules are looked up in the package's folder.

    Returns:
        The absolute file (symbolic links not resolved); ``None`` when the
        module is not found or has no file (built-in, frozen, namespace package).
    """
    parts = name.split(".")
    spec = _top_spec(parts[0], folders)
    for depth in range(2, len(parts) + 1):
        if spec is None or not spec.submodule_search_locations:
            return None
        spec = _sub_spec(".".join(parts[:depth]), list(spec.submodule_search_locations))
    if spec is None or not spec.has_location or not spec.origin:
        return None
    if not os.path.isabs(spec.origin):  # "built-in", "frozen": never a trusted file
        return None
    return Path(spec.origin)


@functools.lru_cache(maxsize=4096)
def _trusted_file(path: Path, folders: tuple[Path, ...]) -> bool:
    """Whether ``path`` (resolved) lies in a folder and outside installed code.

    Cached: resolving a path costs a system call per component, and the
    durable host asks before every call.
    """
    found = path.resolve()
    if any(found.is_relative_to(d) for d in _library_dirs()):
        return False
    return any(found.is_relative_to(f) for f in folders)


def _loaded_spec(name: str) -> ModuleSpec | None:
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    return spec if isinstance(spec, ModuleSpec) else None


def _top_spec(name: str, folders: Sequence[Path]) -> ModuleSpec | None:
    if name in sys.modules:
        return _loaded_spec(name)
    try:  # a top-level name: the finders read directories, nothing is executed
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        return spec
    for folder in folders:
        spec = PathFinder.find_spec(name, [str(folder)])
        if spec is not None:
            return spec
    return None


def _sub_spec(name: str, locations: list[str]) -> ModuleSpec | None:
    if name in sys.modules:
        return _loaded_spec(name)
    return PathFinder.find_spec(name, locations)
