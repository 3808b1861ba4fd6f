"""History retention in the background: ended instances leave the database in batches.

Every ``interval`` seconds a pass asks the registry for its workflow ids (deleted
workflows too), gives each the cutoff its retention sets
(:class:`~tideflow.runtime.retention.RetentionPolicy`: ``now`` less the time it
keeps instances; those kept for ever are left out) and deletes completed, failed
and cancelled instances that ended before their cutoff -- with their journals,
timelines and correlation rows -- ``batch`` instances per transaction, at most
``batches`` transactions per pass. A backlog (the first pass after the retention
was shortened, or after an upgrade) is worked off over several passes, so no
pass holds locks or writes WAL without bound. The purge query finds its rows
through ``tideflow_instances_ended`` (migration ``0016_retention``) and skips
rows another process has locked: every ``tideflow serve`` may run it at once.
"""

from __future__ import annotations

import logging

import asyncpg

from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.errors import TideflowError
from tideflow.runtime.gateway import PostgresHistory
from tideflow.runtime.retention import RetentionPolicy
from tideflow.supervise import Supervisor

__all__ = ["HistoryPurger"]

log = logging.getLogger("tideflow.history")


class HistoryPurger:
    """Deletes ended instances past their workflow's retention (see the module docs).

    Args:
        pool: The asyncpg pool.
        policy: How long each workflow's ended instances are kept.
        clock: Where "now" comes from (tests pass a ManualClock).
        interval: Seconds between passes.
        batch: Most instances deleted in one transaction.
        batches: Most transactions in one pass.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        policy: RetentionPolicy,
        *,
        clock: Clock = SYSTEM_CLOCK,
        interval: float = 60.0,
        batch: int = 200,
        batches: int = 25,
    ) -> None:
        self.store = PostgresHistory(pool)
        self.policy = policy
        self._clock = clock
        self._interval = interval
        self._batch = batch
        self._batches = batches
        self.supervisor = Supervisor("history", clock=clock)
        """Owns the purging loop (``/healthz`` reports it)."""

    async def start(self) -> None:
        """Start the purging loop (its first pass after one interval)."""
        self.supervisor.spawn("purge", self._loop)

    async def stop(self) -> None:
        """Stop the loop; a batch in progress is rolled back (it is whole or nothing)."""
        await self.supervisor.stop()

    async def purge(self) -> int:
        """One pass: delete what is past its retention, at most ``batches`` batches; how many.

        Raises:
            StoreError: The database failed (batches committed before stay done).
        """
        ids, cutoffs = self.policy.cutoffs(await self.store.workflow_ids(), self._clock.now())
        if not ids:
            return 0
        deleted = 0
        for _ in range(self._batches):
            gone = await self.store.purge(ids, cutoffs, self._batch)
            deleted += len(gone)
            if len(gone) < self._batch:
                break
        return deleted

    async def _loop(self) -> None:
        while True:
            await self._clock.sleep(self._interval)
            try:
                if deleted := await self.purge():
                    log.info("deleted %d ended instances past their retention", deleted)
            except (TideflowError, OSError, asyncpg.PostgresError) as exc:
                log.warning("deleting old instances failed, will retry: %s", exc)
