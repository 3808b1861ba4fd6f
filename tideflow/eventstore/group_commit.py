"""Group commit: concurrent submissions share one flush (one transaction).

Callers :meth:`GroupCommit.submit` an item and wait. One task (:meth:`run`)
takes what is queued (until the batch reaches ``max_batch`` units) and hands it to
``flush`` at once; while that transaction commits, new submissions queue up
and form the next batch. So under load a batch grows to what arrived during
one commit, and a lone caller waits for just its own commit.

With ``in_flight`` above 1 the flushes are pipelined: while one batch
commits (waiting for its WAL flush), the next is already taken and handed to
its own ``flush``, which does its work up to where it must wait for the
first (in the event store: the bus row lock). The next batch forms only when
a slot is free, so batches still grow under load.

Each caller gets its result only after the flush that holds its item
returned, i.e. after commit. When a whole flush raises, no item of it is
acknowledged: each item is flushed again alone, so one bad item (or a
deadlock with another process) fails only its own caller, each with its own
error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from tideflow.errors import StoreError

log = logging.getLogger("tideflow.eventstore")

T = TypeVar("T")
R = TypeVar("R")

Flush = Callable[[Sequence[T]], Awaitable[Sequence[R | BaseException]]]
"""Writes items in one transaction; returns a result or an exception per item, in order."""


@dataclass(slots=True)
class _Pending(Generic[T, R]):
    item: T
    size: int
    future: asyncio.Future[R]


class GroupCommit(Generic[T, R]):
    """Batches concurrent submissions into single flushes.

    Args:
        flush: Writes a batch in one transaction; raises if nothing was written.
        max_batch: A batch stops growing once it holds this many units (events);
            its last item may take it past the limit.
        in_flight: Flushes running at once (1: strictly one after the other).
    """

    def __init__(self, flush: Flush[T, R], *, max_batch: int = 10_000, in_flight: int = 1) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._in_flight = max(1, in_flight)
        self._queue: asyncio.Queue[_Pending[T, R] | None] = asyncio.Queue()
        self._open = False
        self.batches = 0
        """Flushes done (for tests and figures)."""

    async def submit(self, item: T, size: int = 1) -> R:
        """Queue ``item`` and wait for the commit that holds it.

        Raises:
            StoreError: The committer is not running.
            BaseException: Whatever the flush reported for this item.
        """
        if not self._open:
            raise StoreError("the event store is not started (or already stopped)")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(item, size, future))
        return await future

    def open(self) -> None:
        """Accept submissions (call before :meth:`run`)."""
        self._open = True

    def close(self) -> None:
        """Refuse new submissions; :meth:`run` returns once the queued ones are flushed."""
        if self._open:
            self._open = False
            self._queue.put_nowait(None)

    async def run(self) -> None:
        """Flush batches until :meth:`close`; if cancelled, fail whatever is still queued."""
        self.open()
        slots = asyncio.Semaphore(self._in_flight)
        try:
            async with asyncio.TaskGroup() as flushes:  # waits for the flushes in flight
                while True:
                    await slots.acquire()  # the next batch grows while every slot is busy
                    first = await self._queue.get()
                    if first is None:
                        return
                    batch, stop = self._take_batch(first)
                    # Per-batch tasks of this task group: each settles its own appends.
                    flushes.create_task(self._flush_in_slot(batch, slots))
                    if stop:
                        return
        finally:
            self._open = False
            self._fail_queued()

    async def _flush_in_slot(self, batch: list[_Pending[T, R]], slots: asyncio.Semaphore) -> None:
        try:
            await self._flush_batch(batch)
        except asyncio.CancelledError:
            for pending in batch:
                _settle(
                    pending,
                    StoreError(
                        "the event store stopped while storing these events (they may be stored)"
                    ),
                )
            raise
        finally:
            slots.release()

    def _fail_queued(self) -> None:
        while not self._queue.empty():
            pending = self._queue.get_nowait()
            if pending is not None:
                _settle(
                    pending, StoreError("the event store stopped before these events were stored")
                )

    def _take_batch(self, first: _Pending[T, R]) -> tuple[list[_Pending[T, R]], bool]:
        batch, total = [first], first.size
        while total < self._max_batch and not self._queue.empty():
            pending = self._queue.get_nowait()
            if pending is None:
                return batch, True
            batch.append(pending)
            total += pending.size
        return batch, False

    async def _flush_batch(self, batch: list[_Pending[T, R]]) -> None:
        self.batches += 1
        try:
            results = await self._flush([p.item for p in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0], _as_store_error(exc))
                return
            log.warning(
                "group commit of %d appends failed (%s); retrying each alone", len(batch), exc
            )
            for pending in batch:
                await self._flush_batch([pending])
            return
        for pending, result in zip(batch, results, strict=True):
            _settle(pending, result)


def _as_store_error(exc: Exception) -> BaseException:
    if isinstance(exc, StoreError):
        return exc
    error = StoreError(f"the events were not stored: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


def _settle(pending: _Pending[T, R], result: R | BaseException) -> None:
    if pending.future.done():  # the caller gave up waiting; the events may still be stored
        return
    if isinstance(result, BaseException):
        pending.future.set_exception(result)
    else:
        pending.future.set_result(result)
