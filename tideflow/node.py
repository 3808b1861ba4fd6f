"""This process's node id, held: no two live processes work under the same one.

A process's node id (:attr:`tideflow.settings.Settings.node_id`) is the owner
of its leases, and stable across restarts, so a restarted process can take
back at once what its previous life held (``RuntimeOptions.take_over``). That
is safe only if the previous life is gone: :func:`hold_node` holds a session
advisory lock named after the id, on a connection of its own, for the
process's life. A killed process's session ends with it (the server notices
the closed connection at once; with keepalives set on that session, within
about half a minute when its machine is gone), and the lock with it.

When another live session holds the lock -- a second process started with
the same ``--node-id``, or the previous life's session not ended yet -- the
process still starts, under an owner of its own for this life (the id and a
random suffix), and takes nothing back: the other's leases are left to it,
or run out as any crashed process's do.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from tideflow import ids
from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.db import node_unlock, try_node_lock
from tideflow.notify import CONNECTION_ERRORS

__all__ = ["Node", "hold_node"]

log = logging.getLogger("tideflow.node")

TRIES = 8
"""Tries for the lock, a quarter of a second apart: a killed predecessor's session
ends a moment after its process."""

@dataclass(frozen=True, slots=True)
class Node:
    """The node this process runs as.

    Attributes:
        id: Its node id.
        owner: The lease owner for this life: ``id`` when held, else ``id`` and a
            random suffix.
        held: Whether this process holds the id (it may take back its leases).
    """

    id: str
    owner: str
    held: bool


@asynccontextmanager
async def hold_node(
    pool: asyncpg.Pool, node_id: str, *, clock: Clock = SYSTEM_CLOCK
) -> AsyncIterator[Node]:
    """Hold ``node_id`` until the block ends (see the module docs).

    One connection of ``pool`` stays taken while the id is held; it is given
    back, unlocked, when the block ends (a pool's reset unlocks it in any case).
    """
    conn = await _lock(pool, node_id, clock)
    if conn is None:
        owner = f"{node_id}~{ids.new_id()[:8]}"
        log.warning(
            "node %s: another live session holds this node id (a second process with the "
            "same --node-id, or this one's previous life not ended yet): running as %s, "
            "taking nothing back",
            node_id,
            owner,
        )
        yield Node(node_id, owner, held=False)
        return
    try:
        yield Node(node_id, node_id, held=True)
    finally:
        try:
            await node_unlock(conn, node_id)
        except CONNECTION_ERRORS as exc:  # the session is gone, and its lock with it
            log.warning("node %s: giving the node id back failed: %s", node_id, exc)
        finally:
            await pool.release(conn)


async def _lock(pool: asyncpg.Pool, node_id: str, clock: Clock) -> asyncpg.Connection | None:
    """A pooled connection holding the lock, or ``None`` after :data:`TRIES` tries."""
    for attempt in range(TRIES):
        if attempt:
            await clock.sleep(0.25)
        conn = await pool.acquire()
        try:
            if await try_node_lock(conn, node_id):
                return conn
        except BaseException:
            await pool.release(conn)
            raise
        await pool.release(conn)
    return None
