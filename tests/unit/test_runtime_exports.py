"""The curated public API of ``tideflow.runtime`` does not drift; the interpreter stays pure."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import tideflow.runtime as runtime

PURE = [
    "interpreter.py",
    "_context.py",
    "_actions.py",
    "_invoke.py",
    "_input.py",
    "compensation.py",
    "timeouts.py",
    "retry.py",
    "result.py",
    "state.py",
    "effects.py",
    "_states/__init__.py",
    "_states/basic.py",
    "_states/events.py",
    "_states/parallel.py",
    "_states/foreach.py",
    "_turns.py",
]
BANNED = {"asyncpg", "httpx", "fastapi", "time", "random", "socket", "os", "subprocess"}


def test_every_export_exists_and_is_documented() -> None:
    assert {"Interpreter", "Effects", "FunctionCall", "Completed", "Failed"} <= set(runtime.__all__)
    for name in runtime.__all__:
        assert inspect.getdoc(getattr(runtime, name)), name


def test_interpreter_modules_import_no_io_clock_or_randomness() -> None:
    root = Path(runtime.__file__).parent
    for relative in PURE:
        tree = ast.parse((root / relative).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
            else:
                continue
            assert not BANNED & set(names), f"{relative} imports {names}"
            assert "datetime.now" not in ast.unparse(tree), relative
