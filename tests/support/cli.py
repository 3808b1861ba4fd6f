"""Run the real ``tideflow`` CLI as a subprocess against a server."""

from __future__ import annotations

import asyncio
import os
import sys


async def run_cli(server: str, *args: str, token: str | None = None) -> tuple[int, str, str]:
    """Run ``python -m tideflow.cli ARGS`` with ``TIDEFLOW_SERVER=server``.

    ``token`` goes in ``TIDEFLOW_TOKEN`` (none: the CLI finds its own, or sends none).

    Returns:
        The exit code, stdout and stderr.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tideflow.cli",
        *args,
        env=_environment(server, token),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _environment(server: str, token: str | None) -> dict[str, str]:
    env = {**os.environ, "TIDEFLOW_SERVER": server}
    env.pop("TIDEFLOW_TOKEN", None)
    if token is not None:
        env["TIDEFLOW_TOKEN"] = token
    return env
