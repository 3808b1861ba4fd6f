"""The archive tier's files: :class:`ArchiveFiles` writes, verifies, reads and deletes them.

A bus with ``archive: {after, to}`` has its old segments written as Parquet
files (:mod:`tideflow.eventstore.archive_format`) under ``to``: a local folder
(a path or ``file://`` URL, which must lie under the server's archive root) or
any fsspec file system by URL (``s3://bucket/prefix`` with the ``tideflow[s3]``
extra). The layout under ``to``::

    <bus name>.<bus id>/<segment number, 12 digits>.parquet
    <bus name>.<bus id>/manifest.json        the archived segments, for outside tools

The database's manifest (``tideflow_archived_segments``) is the source of
truth; ``manifest.json`` is rewritten after each archive pass and may lag it.

Local files are written to a temporary name, fsynced and renamed (then the
folder is fsynced), so a crash leaves either no file or a whole one; an object
store's PUT is atomic. Either way the file is read back and checked (row
count and checksum) before the gateway drops the segment's partition.

S3's endpoint is botocore's (``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, else
AWS), credentials botocore's usual chain; :func:`check_egress` asks the
server's egress policy about that endpoint when a bus is created.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import fsspec
import orjson

from tideflow.egress import EgressPolicy
from tideflow.errors import EgressDenied, InvalidArgument, StoreError
from tideflow.eventstore.archive_format import (
    ROW_GROUP,
    LogRow,
    SegmentData,
    checksum,
    decode_segment,
    encode_segment,
    read_row_group,
)

log = logging.getLogger("tideflow.eventstore.archive")

LOCAL_SCHEMES: Final = frozenset({"", "file", "local"})
REMOTE_ENDPOINTS: Final[Mapping[str, tuple[str, int]]] = {
    "s3": ("s3.amazonaws.com", 443),
    "s3a": ("s3.amazonaws.com", 443),
    "gs": ("storage.googleapis.com", 443),
    "gcs": ("storage.googleapis.com", 443),
}
"""Object stores ``archive.to`` may name, with their default endpoints."""


def resolve_target(to: str, root: Path) -> str:
    """The location ``to`` names, checked: an absolute local path under ``root``, or a URL.

    A relative path is taken under ``root``.

    Raises:
        InvalidArgument: Naming ``archive.to``: a local folder outside the root,
            or a scheme that is not a local folder or a supported object store.
    """
    scheme = urlsplit(to).scheme.lower() if "://" in to else ""
    if scheme in LOCAL_SCHEMES:
        raw = to.split("://", 1)[1] if scheme else to
        base = root.resolve()
        path = (base / raw).resolve()
        if not path.is_relative_to(base):
            raise InvalidArgument(
                f"archive.to: the local folder {str(path)!r} is not under the server's archive "
                f"root {str(base)!r} (set with --archive-root or TIDEFLOW_ARCHIVE_ROOT)",
                argument="archive.to",
            )
        return str(path)
    if scheme not in REMOTE_ENDPOINTS:
        raise InvalidArgument(
            f"archive.to: unsupported scheme {scheme!r}; use a local folder, file://, "
            + ", ".join(f"{name}://" for name in REMOTE_ENDPOINTS),
            argument="archive.to",
        )
    if not urlsplit(to).netloc:
        raise InvalidArgument(f"archive.to: {to!r} names no bucket", argument="archive.to")
    return to


def endpoint(to: str, env: Mapping[str, str] | None = None) -> tuple[str, int] | None:
    """The host and port files under ``to`` are sent to (``None``: a local folder)."""
    scheme = urlsplit(to).scheme.lower() if "://" in to else ""
    if scheme in LOCAL_SCHEMES:
        return None
    env = os.environ if env is None else env
    if scheme in ("s3", "s3a"):
        url = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
        if url:
            parts = urlsplit(url)
            port = parts.port or (80 if parts.scheme == "http" else 443)
            return parts.hostname or "", port
    return REMOTE_ENDPOINTS[scheme]


async def check_egress(to: str, policy: EgressPolicy) -> None:
    """Raise unless the egress policy lets the server reach ``to``'s endpoint.

    Raises:
        EgressDenied: The policy refuses the endpoint, or it does not resolve.
    """
    from tideflow.egress_connect import resolve

    target = endpoint(to)
    if target is None:
        return
    host, port = target
    try:
        addresses = await resolve(host, port)
    except OSError as exc:
        raise EgressDenied(f"the endpoint {host} does not resolve ({exc})") from None
    policy.check(host, port, addresses)


@dataclass(frozen=True, slots=True, kw_only=True)
class WrittenSegment:
    """A segment file written and verified.

    Attributes:
        location: The file (absolute path or URL).
        size: Its size in bytes.
        count: Events in it.
        checksum: Their checksum (see :func:`~tideflow.eventstore.archive_format.checksum`).
    """

    location: str
    size: int
    count: int
    checksum: str


def segment_location(to: str, bus: str, bus_id: int, segment_no: int) -> str:
    """Where a segment's file goes under ``to``."""
    return f"{to.rstrip('/')}/{bus}.{bus_id}/{segment_no:012d}.parquet"


def manifest_location(to: str, bus: str, bus_id: int) -> str:
    """Where a bus's ``manifest.json`` goes under ``to``."""
    return f"{to.rstrip('/')}/{bus}.{bus_id}/manifest.json"


class ArchiveFiles:
    """Segment files on local disk or an fsspec file system, with a small read cache of row groups.

    Args:
        cache_bytes: Memory for recently read files, kept decoded (see ``SegmentData.memory``).
    """

    def __init__(self, *, cache_bytes: int = 256 * 1024 * 1024) -> None:
        self._cache: OrderedDict[tuple[str, int], SegmentData] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._cached = 0
        self.reads = 0
        """Files read from storage (cache misses), for tests and figures."""

    async def write(
        self,
        location: str,
        rows: Sequence[LogRow],
        metadata: dict[str, str],
    ) -> WrittenSegment:
        """Write a segment's rows to ``location``, read the file back and check it.

        Raises:
            StoreError: Writing failed, or what was read back is not what was written.
        """
        return await asyncio.to_thread(self._write, location, rows, metadata)

    def _write(self, location: str, rows: Sequence[LogRow], metadata: dict[str, str]) -> Any:
        data, digest = encode_segment(rows, metadata)
        try:
            fs, path = fsspec.core.url_to_fs(location)
            _put(fs, path, data)
            back = fs.cat_file(path)  # from storage, not from what we hold
        except (OSError, ValueError, ImportError) as exc:
            raise StoreError(f"archive: cannot write {location}: {exc}") from exc
        try:
            segment, meta = decode_segment(back)
        except ValueError as exc:
            raise StoreError(f"archive: {location} does not read back: {exc}") from exc
        if len(segment) != len(rows) or checksum(segment.offsets, segment.texts) != digest:
            raise StoreError(f"archive: {location} read back differs from what was written")
        if meta.get("tideflow.checksum") != digest:
            raise StoreError(f"archive: {location} carries another checksum")
        return WrittenSegment(location=location, size=len(back), count=len(rows), checksum=digest)

    async def read(self, location: str, first_offset: int, after: int) -> SegmentData:
        """The events of a segment's file from the row group holding offset ``after + 1`` (or
        its first event, if ``after`` is before it), through the cache.

        Args:
            location: The file.
            first_offset: The segment's first offset.
            after: Read past this offset.

        Raises:
            FileNotFoundError: No such file (retention may just have deleted it).
            StoreError: The file cannot be read or is not a segment file.
        """
        group = max(after + 1 - first_offset, 0) // ROW_GROUP
        key = (location, group)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        chunk = await asyncio.to_thread(self._read_group, location, group)
        self.reads += 1
        self._remember(key, chunk)
        return chunk

    def _read_group(self, location: str, group: int) -> SegmentData:
        try:
            fs, path = fsspec.core.url_to_fs(location)
            with fs.open(path, "rb") as file:
                return read_row_group(file, group)
        except FileNotFoundError:
            raise
        except ValueError as exc:
            raise StoreError(f"archive: {location}: {exc}") from exc
        except (OSError, ImportError) as exc:
            raise StoreError(f"archive: cannot read {location}: {exc}") from exc

    async def read_file(self, location: str) -> SegmentData:
        """Every event of a segment's file, read whole (not cached): for checks.

        Raises:
            FileNotFoundError: No such file.
            StoreError: The file cannot be read or is not a segment file.
        """
        return await asyncio.to_thread(self._read_file, location)

    def _read_file(self, location: str) -> SegmentData:
        try:
            fs, path = fsspec.core.url_to_fs(location)
            data = fs.cat_file(path)
        except FileNotFoundError:
            raise
        except (OSError, ValueError, ImportError) as exc:
            raise StoreError(f"archive: cannot read {location}: {exc}") from exc
        try:
            return decode_segment(data)[0]
        except ValueError as exc:
            raise StoreError(f"archive: {location}: {exc}") from exc

    def _remember(self, key: tuple[str, int], segment: SegmentData) -> None:
        if segment.memory > self._cache_bytes:
            return
        self._cache[key] = segment
        self._cached += segment.memory
        while self._cached > self._cache_bytes:
            _, old = self._cache.popitem(last=False)
            self._cached -= old.memory

    async def delete(self, location: str) -> None:
        """Delete a file (gone already is fine).

        Raises:
            StoreError: It could not be deleted.
        """
        self._forget(location)
        await asyncio.to_thread(self._delete, location)

    def _forget(self, location: str) -> None:
        for key in [key for key in self._cache if key[0] == location]:
            self._cached -= self._cache.pop(key).memory

    def _delete(self, location: str) -> None:
        try:
            fs, path = fsspec.core.url_to_fs(location)
            with contextlib.suppress(FileNotFoundError):
                fs.rm_file(path)
        except (OSError, ValueError, ImportError) as exc:
            raise StoreError(f"archive: cannot delete {location}: {exc}") from exc

    async def write_manifest(self, location: str, manifest: Mapping[str, Any]) -> None:
        """Write a bus's ``manifest.json`` (for outside tools; the database's is authoritative).

        Raises:
            StoreError: It could not be written.
        """
        data = orjson.dumps(manifest, option=orjson.OPT_INDENT_2)

        def put() -> None:
            try:
                fs, path = fsspec.core.url_to_fs(location)
                _put(fs, path, data)
            except (OSError, ValueError, ImportError) as exc:
                raise StoreError(f"archive: cannot write {location}: {exc}") from exc

        await asyncio.to_thread(put)


def _put(fs: Any, path: str, data: bytes) -> None:
    """Write ``data`` whole: local files through a temporary name, fsync and rename."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol not in ("file", "local"):
        fs.pipe_file(path, data)  # an object store's PUT: all or nothing
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, target)
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
