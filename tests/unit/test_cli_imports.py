"""Starting the CLI imports no server stack and no interpreter: every ``tideflow`` command
(``--help``, ``validate``, the API client commands) starts without loading FastAPI, GraphQL,
uvicorn, the database and Temporal drivers, or the runtime and workflow packages (the
interpreter, the workflow model, jq); the commands that need them import them when they run."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("fastapi", "graphql", "uvicorn", "asyncpg", "temporalio")
INTERPRETER = ("tideflow.runtime", "tideflow.runtime.interpreter", "tideflow.workflow", "jq")


def test_importing_the_cli_loads_no_server_stack_and_no_interpreter() -> None:
    code = (
        "import sys, tideflow.cli; "
        f"print(','.join(m for m in {HEAVY + INTERPRETER!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "", f"imported at CLI start: {done.stdout.strip()}"
