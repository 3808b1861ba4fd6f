"""Ctrl-C during a CLI call to the server ends with exit status 130, never a traceback."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import typer

from tideflow._cli.common import call_api


def test_an_interrupt_becomes_exit_status_130() -> None:
    async def interrupted(_client: Any) -> None:
        raise KeyboardInterrupt

    with pytest.raises(typer.Exit) as stopped:
        call_api("http://127.0.0.1:9", interrupted)
    assert stopped.value.exit_code == 130


def test_a_sigint_while_asyncio_run_starts_becomes_exit_status_130() -> None:
    # What asyncio.run leaves when the SIGINT lands before it counts interrupts: its task
    # cancelled, and the CancelledError itself coming out of asyncio.run
    async def cancelled(_client: Any) -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(0)

    with pytest.raises(typer.Exit) as stopped:
        call_api("http://127.0.0.1:9", cancelled)
    assert stopped.value.exit_code == 130
