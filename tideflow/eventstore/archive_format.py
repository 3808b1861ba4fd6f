"""The archive tier's file format: one Parquet file per segment (pure: no I/O).

A segment's file holds one row per event, in offset order:

==========  =====================  =================================================
column      type                   what
==========  =====================  =================================================
offset      int64                  the event's offset in its bus
stored_at   timestamp[us, UTC]     when the store accepted it
id          string                 CloudEvents ``id``
source      string                 CloudEvents ``source``
type        string (nullable)      CloudEvents ``type``
time        string (nullable)      CloudEvents ``time``
subject     string (nullable)      CloudEvents ``subject``
event       string                 the structured CloudEvent exactly as stored
==========  =====================  =================================================

``event`` is the text the log held, so reading it back gives the event byte
for byte; the attribute columns are there for outside tools (a query engine
can filter on ``type`` without parsing JSON). The file's key-value metadata
names the bus, the segment, its offsets, the row count and the checksum, and
is compressed with zstd.

The checksum (:func:`checksum`) is a SHA-256 over each row's offset and event
text, length-prefixed; the archiver computes it from the rows it read from
the partition and again from the file it read back, and compares.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from tideflow.eventstore.codec import decode_event

FORMAT_VERSION: Final = "1"
SCHEMA: Final = pa.schema(
    [
        pa.field("offset", pa.int64(), nullable=False),
        pa.field("stored_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("type", pa.string()),
        pa.field("time", pa.string()),
        pa.field("subject", pa.string()),
        pa.field("event", pa.string(), nullable=False),
    ]
)

ROW_GROUP: Final = 16_384
"""Events per Parquet row group: a read of an archived segment decodes only the groups it needs
(group ``g`` holds the segment's events ``g * ROW_GROUP`` to ``(g + 1) * ROW_GROUP - 1``)."""
_OBJECT_BYTES = 120
"""Per event, about: a str header, an int, a datetime and three list slots."""

LogRow = tuple[int, str, datetime]
"""An event as the log holds it: offset, JSON text, stored_at."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SegmentData:
    """A segment's events read from its file, in offset order.

    Attributes:
        offsets: Their offsets (contiguous).
        texts: Their JSON texts, as stored.
        stored_at: When each was stored.
        memory: About the bytes it takes decoded (the texts plus ~120 bytes of Python objects
            per event), for the read cache's bound -- many times the compressed file's size.
    """

    offsets: Sequence[int]
    texts: Sequence[str]
    stored_at: Sequence[datetime]
    memory: int

    def __len__(self) -> int:
        return len(self.offsets)

    def index_after(self, after: int) -> int:
        """The position of the first event with an offset greater than ``after``."""
        if not self.offsets:
            return 0
        return min(max(after + 1 - self.offsets[0], 0), len(self.offsets))


def checksum(offsets: Sequence[int], texts: Sequence[str]) -> str:
    """SHA-256 (hex) over each event's offset and text, length-prefixed."""
    digest = hashlib.sha256()
    for offset, text in zip(offsets, texts, strict=True):
        data = text.encode()
        digest.update(offset.to_bytes(8, "big", signed=True))
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def _attribute(event: dict[str, Any], name: str) -> str | None:
    value = event.get(name)
    return None if value is None else str(value)


def encode_segment(rows: Sequence[LogRow], metadata: dict[str, str]) -> tuple[bytes, str]:
    """A segment's rows (offset order) as a Parquet file; returns it and its checksum.

    Args:
        rows: The events as the log holds them.
        metadata: Key-value metadata to add (bus, segment, offsets), as text.
    """
    offsets = [row[0] for row in rows]
    texts = [row[1] for row in rows]
    events = [decode_event(text) for text in texts]
    digest = checksum(offsets, texts)
    table = pa.Table.from_pydict(
        {
            "offset": offsets,
            "stored_at": [row[2] for row in rows],
            "id": [str(event["id"]) for event in events],
            "source": [str(event["source"]) for event in events],
            "type": [_attribute(event, "type") for event in events],
            "time": [_attribute(event, "time") for event in events],
            "subject": [_attribute(event, "subject") for event in events],
            "event": texts,
        },
        schema=SCHEMA,
    )
    meta = {
        **metadata,
        "tideflow.format": FORMAT_VERSION,
        "tideflow.count": str(len(rows)),
        "tideflow.checksum": digest,
    }
    table = table.replace_schema_metadata({k.encode(): v.encode() for k, v in meta.items()})
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", row_group_size=ROW_GROUP)
    return sink.getvalue(), digest


def decode_segment(data: bytes) -> tuple[SegmentData, dict[str, str]]:
    """A segment file's events and its key-value metadata.

    Raises:
        ValueError: The bytes are not a segment file of this format.
    """
    try:
        table = pq.read_table(io.BytesIO(data), columns=list(READ_COLUMNS))
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"not a readable Parquet file: {exc}") from exc
    raw = table.schema.metadata or {}
    metadata = {k.decode(): v.decode() for k, v in raw.items() if k.startswith(b"tideflow.")}
    if metadata.get("tideflow.format") != FORMAT_VERSION:
        raise ValueError(f"unknown archive format {metadata.get('tideflow.format')!r}")
    return segment_of(table), metadata


READ_COLUMNS: Final = ("offset", "stored_at", "event")
"""The columns reads decode."""


def segment_of(table: Any) -> SegmentData:
    """The events of a table (or row group) read with :data:`READ_COLUMNS`."""
    texts = table.column("event").to_pylist()
    return SegmentData(
        offsets=table.column("offset").to_pylist(),
        texts=texts,
        stored_at=table.column("stored_at").to_pylist(),
        memory=sum(map(len, texts)) + _OBJECT_BYTES * len(texts),
    )


def read_row_group(file: Any, group: int) -> SegmentData:
    """Row group ``group`` of an open segment file (no events past the last group).

    Raises:
        ValueError: The file is not a segment file of this format.
    """
    try:
        parquet = pq.ParquetFile(file)
        raw = parquet.schema_arrow.metadata or {}
        if raw.get(b"tideflow.format", b"").decode() != FORMAT_VERSION:
            raise ValueError("not a Tideflow segment file of this format")
        if group >= parquet.num_row_groups:
            return SegmentData(offsets=(), texts=(), stored_at=(), memory=0)
        return segment_of(parquet.read_row_group(group, columns=list(READ_COLUMNS)))
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"not a readable Parquet file: {exc}") from exc
