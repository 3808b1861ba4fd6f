"""Starting the CLI imports no server stack: every ``tideflow`` command (``--help``,
``validate``, the API client commands) starts without loading FastAPI, GraphQL, uvicorn or
the database and Temporal drivers; the commands that need them import them when they run."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("fastapi", "graphql", "uvicorn", "asyncpg", "temporalio")


def test_importing_the_cli_loads_no_server_stack() -> None:
    code = (
        "import sys, tideflow.cli; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "", f"imported at CLI start: {done.stdout.strip()}"
