"""In-process Python functions: ``python:package.module:function``.

The callable is imported (modules next to the workflow file are found too),
then called with the evaluated arguments as one dict. It may be sync or
async; a sync callable runs on the event loop, so keep it quick (write long
I/O as ``async def``) -- unless the caller gives :func:`call_function` a thread
pool, as the Temporal worker does (:class:`~tideflow.runtime.functions.FunctionInvoker`'s
``sync_threads``): then a plain ``def`` runs on one of its threads and blocks no
other call, but it must not touch the event loop (no ``asyncio.get_running_loop()``).
When its signature has an ``idempotency_key`` parameter (or ``**kwargs``) it also
receives ``idempotency_key=`` -- the same
value when a step is retried or replayed. On a server only the modules its
policy allows are imported (:mod:`tideflow.runtime.functions.policy`); the
attribute path never leads out of the named module (``python:m:os.system``).

A callable fails by raising. The workflow error's ``code`` is the
exception's ``code`` attribute when it has one, else its class name; its
message is ``str(exc)``; it is retryable unless the exception has
``retryable = False``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import importlib
import inspect
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from pathlib import Path
from types import ModuleType
from typing import Any

from tideflow.errors import FunctionCallError
from tideflow.runtime.functions.types import call_error

PythonFunction = Callable[..., Any]


def parse_reference(operation: str) -> tuple[str, str]:
    """Split ``python:pkg.mod:func`` into module and attribute path."""
    target = operation.removeprefix("python:")
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise call_error(
            f"operation {operation!r} is not 'python:package.module:function'",
            code="InvalidOperation",
        )
    return module, attr


def load_function(operation: str, base_dir: Path | None = None) -> PythonFunction:
    """Import the callable ``operation`` names.

    Raises:
        FunctionCallError: The module or attribute is missing, or not callable.
    """
    module_name, attr = parse_reference(operation)
    try:
        module = _import(module_name, base_dir)
    except ImportError as exc:
        raise call_error(
            f"cannot import {module_name!r} for {operation!r}: {exc}", code="FunctionNotFound"
        ) from exc
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise call_error(
                f"module {module_name!r} has no {attr!r} (from {operation!r})",
                code="FunctionNotFound",
            )
        _stay_inside(target, module_name, operation)
    if not callable(target):
        raise call_error(f"{operation!r} is not callable", code="FunctionNotFound")
    return target  # type: ignore[no-any-return]


def _stay_inside(target: Any, module_name: str, operation: str) -> None:
    """Refuse a path through a module other than ``module_name``'s own submodules.

    A server allows modules by name (:mod:`tideflow.runtime.functions.policy`);
    ``python:allowed:os.system`` must not reach ``os`` through an allowed
    module's globals. Other modules are named directly: ``python:os:system``.
    """
    if isinstance(target, ModuleType) and not target.__name__.startswith(module_name + "."):
        raise call_error(
            f"{operation!r} reaches module {target.__name__!r} through {module_name!r}: "
            f"name it directly, as python:{target.__name__}:...",
            code="FunctionNotFound",
        )


def _import(name: str, base_dir: Path | None) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError:
        if base_dir is None or str(base_dir) in sys.path:
            raise
    sys.path.insert(0, str(base_dir))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(base_dir))


def wants_idempotency_key(function: PythonFunction) -> bool:
    """Whether ``function`` accepts an ``idempotency_key`` keyword.

    The answer is cached per callable (``inspect.signature`` costs ~20 us,
    a durable step's function call is paid on every step); callables that
    cannot be hashed are inspected each time.
    """
    try:
        return _wants_key_cached(function)
    except TypeError:
        return _wants_key(function)


@functools.lru_cache(maxsize=1024)
def _wants_key_cached(function: PythonFunction) -> bool:
    return _wants_key(function)


def _wants_key(function: PythonFunction) -> bool:
    try:
        params = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.name == "idempotency_key" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params
    )


def is_async(function: PythonFunction) -> bool:
    """Whether calling ``function`` only makes a coroutine (``async def``, also as a
    ``functools.partial`` or an object whose ``__call__`` is one)."""
    call = type(function).__call__ if not inspect.isroutine(function) else None
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(call)


async def call_function(
    function: PythonFunction,
    arguments: Mapping[str, Any],
    idempotency_key: str | None = None,
    *,
    name: str = "",
    threads: Executor | None = None,
) -> Any:
    """Call ``function`` with ``arguments`` as one dict; await it when async.

    With ``threads``, a callable that is not ``async`` runs on one of them (an
    awaitable it returns is awaited here), so it does not hold the event loop.

    Raises:
        FunctionCallError: The callable raised; see the module docs for the code.
    """
    kwargs = {"idempotency_key": idempotency_key} if wants_idempotency_key(function) else {}
    try:
        if threads is None or is_async(function):
            result = function(dict(arguments), **kwargs)
        else:
            call = functools.partial(function, dict(arguments), **kwargs)
            run = functools.partial(contextvars.copy_context().run, call)
            result = await asyncio.get_running_loop().run_in_executor(threads, run)
        if inspect.isawaitable(result):
            result = await result
    except FunctionCallError:
        raise
    except Exception as exc:
        raise as_call_error(exc, name) from exc
    return result


def as_call_error(exc: BaseException, name: str = "") -> FunctionCallError:
    """The workflow error for an exception a Python function raised.

    The message is ``str(exc)`` exactly (the class name when that is empty),
    so ``onErrors`` consumers see what the function said. ``name`` is
    accepted for callers that know the function; it is not added to the text.
    """
    code = getattr(exc, "code", None)
    code_text = str(code) if code is not None else type(exc).__name__
    retryable = bool(getattr(exc, "retryable", True))
    return FunctionCallError(str(exc) or type(exc).__name__, code=code_text, retryable=retryable)
