"""The directory source: each new file in a directory of this machine is one event.

**Source** (``config``: ``path`` an absolute directory, ``pattern`` a glob on file
names, default ``*``, ``batch`` default 100 files, ``interval`` default 1 s,
``settle`` default 1 s, ``maxBytes`` default 1 MiB, ``mode``): polls the directory
for regular files (not links, not names starting with ``.``) that have not changed
for ``settle`` seconds, oldest first, and appends one event per file. Only after the
events are committed is each file moved to ``<path>/.done/`` (a file of the same name
there is replaced); a crash before the move reads the file again, and its event id,
``<file name>:<SHA-256 of its content>`` (the first 32 hex digits), dedups it to the
same event. A file dropped again later with the same name and the same content is
therefore the same record. A file larger than ``maxBytes`` is not read: it is moved
to ``<path>/.rejected/`` and the failure logged. Writers should write elsewhere (or
under a name starting with ``.``) and rename the file into the directory, which is
atomic; ``settle`` guards against a writer that does not.

The record's ``channel`` (the event's default ``subject``) is the file name; its
``headers`` are ``name`` and ``size``; its data the content (JSON if it parses, else
text, else ``data_base64``).

The directory is the server's file system: only the operator declares such a
connector (``tideflow serve --connectors FILE``), never ``POST /connectors``.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tideflow.connectors.base import Emit, SourceContext, config_number, config_text
from tideflow.connectors.mapping import Record, decode_body

log = logging.getLogger("tideflow.connectors")

DONE: Final = ".done"
"""Where a file goes once its event is committed (inside the directory)."""
REJECTED: Final = ".rejected"
"""Where a file too large to read goes."""
BATCH_BYTES: Final = 8 * 1024 * 1024
"""The most content read for one commit (a batch stops early past it)."""


@dataclass(frozen=True, slots=True)
class _Found:
    name: str
    size: int
    mtime_ns: int


class DirectorySource:
    """Files of a directory, each moved away after its event committed (module docs)."""

    def __init__(self, context: SourceContext) -> None:
        config = context.config
        self._context = context
        self._path = Path(config_text(config, "path"))  # absolute (checked by the spec)
        self._pattern = config_text(config, "pattern", "*")
        self._batch = int(config_number(config, "batch", 100, 1))
        self._interval = config_number(config, "interval", 1.0, 0.01)
        self._settle = config_number(config, "settle", 1.0, 0)
        self._max_bytes = int(config_number(config, "maxBytes", 1024 * 1024, 1))

    async def run(self, emit: Emit) -> None:
        """Poll until cancelled (or, scheduled, until no settled file is left)."""
        await asyncio.to_thread(self._prepare)
        self._context.on_connection(True)
        while True:
            found = await asyncio.to_thread(self._settled, self._context.clock.now().timestamp())
            if found:
                records, read = await asyncio.to_thread(self._read, found[: self._batch])
                if records:
                    await emit(records, None)
                await asyncio.to_thread(self._move, read, DONE)
                if read:
                    continue
            if self._context.scheduled:
                return
            await self._context.clock.sleep(self._interval)

    def _prepare(self) -> None:
        if not self._path.is_dir():
            raise FileNotFoundError(f"config.path {str(self._path)!r} is not a directory")
        for folder in (DONE, REJECTED):
            (self._path / folder).mkdir(exist_ok=True)

    def _settled(self, now: float) -> list[_Found]:
        """The files to read, oldest first (by modification time, then name)."""
        found: list[_Found] = []
        with os.scandir(self._path) as entries:
            for entry in entries:
                if entry.name.startswith(".") or not fnmatch.fnmatchcase(entry.name, self._pattern):
                    continue
                info = entry.stat(follow_symlinks=False)
                if not stat.S_ISREG(info.st_mode) or info.st_mtime > now - self._settle:
                    continue
                found.append(_Found(entry.name, info.st_size, info.st_mtime_ns))
        found.sort(key=lambda f: (f.mtime_ns, f.name))
        return found

    def _read(self, found: list[_Found]) -> tuple[list[Record], list[str]]:
        """Records of the files (up to :data:`BATCH_BYTES`), and the names read."""
        records: list[Record] = []
        names: list[str] = []
        total = 0
        for item in found:
            if item.size > self._max_bytes:
                log.error(
                    "connector %s: %s has %d bytes, more than maxBytes %d: moved to %s",
                    self._context.name, item.name, item.size, self._max_bytes, REJECTED,
                )  # fmt: skip
                self._move([item.name], REJECTED)
                continue
            if names and total + item.size > BATCH_BYTES:
                break
            content = self._content(item.name)
            if content is None:  # gone, replaced by a link, or grown past the limit
                continue
            total += len(content)
            names.append(item.name)
            records.append(self._record(item.name, content))
        return records, names

    def _content(self, name: str) -> bytes | None:
        try:
            fd = os.open(self._path / name, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as file:
            content = file.read(self._max_bytes + 1)
        return None if len(content) > self._max_bytes else content

    def _record(self, name: str, content: bytes) -> Record:
        data, data_base64 = decode_body(content)
        digest = hashlib.sha256(content).hexdigest()[:32]
        return Record(
            id=f"{name}:{digest}",
            data=data,
            data_base64=data_base64,
            channel=name,
            headers={"name": name, "size": str(len(content))},
        )

    def _move(self, names: list[str], folder: str) -> None:
        for name in names:
            try:
                os.replace(self._path / name, self._path / folder / name)
            except FileNotFoundError:  # moved by a run before a crash
                continue


def make_source(context: SourceContext) -> DirectorySource:
    """The source of a ``directory`` connector."""
    return DirectorySource(context)
