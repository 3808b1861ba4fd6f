"""PostgreSQL connectors: the rows of a table as they are inserted, and a table sink.

**Source** (``config``: ``url``, ``table``, ``cursor`` default ``id``, ``columns``
default every column, ``batch`` default 500, ``interval`` default 1 s, ``mode``):
reads ``WHERE cursor > position ORDER BY cursor`` in batches and stores the last
cursor value with the batch's events (after their commit). A restart, a lost
connection or a crash resumes from the stored position: no notification is needed,
so none can be lost. The event id is ``<table>:<cursor value>`` (the row's key), so
rows read twice after a crash dedup to the same events. The cursor must grow in
commit order (a sequence written by one writer, or a commit timestamp): a row that
commits later with a smaller cursor than one already read is not seen.

**Sink** (``config``: ``url``, ``table``, ``upsert`` an optional list of key columns):
each message (an object, see :data:`~tideflow.connectors.mapping.DEFAULT_ROW`) is one
row; PostgreSQL converts its JSON values to the columns' types
(``jsonb_populate_record``). With ``upsert`` a row whose key exists is updated; a
redelivered event then writes the same row again. A row the table refuses (a type, a
constraint, an unknown column) is dead-lettered at once; a connection failure retried.

The statements name a table and columns that come from the connector's config:
each identifier is quoted (:func:`quote_ident`), and values are always parameters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import asyncpg
import orjson

from tideflow.connectors.base import Emit, SourceContext, config_number, config_text
from tideflow.connectors.mapping import Record
from tideflow.errors import InvalidArgument, SinkRejected

_IDENT: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")
_REFUSED: Final = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.UndefinedColumnError,
    asyncpg.UndefinedTableError,
    asyncpg.SyntaxOrAccessError,
)


_SELECT: Final = (
    "SELECT {columns}, {cursor} AS tideflow_cursor FROM {table} {where} "
    "ORDER BY {cursor} LIMIT {limit}"
)
_INSERT: Final = (
    "INSERT INTO {table} ({columns}) SELECT {columns} "
    "FROM jsonb_populate_record(NULL::{table}, $1::jsonb)"
)


def quote_ident(name: str, what: str) -> str:
    """``name`` (``schema.table`` allowed) as a quoted SQL identifier.

    Raises:
        InvalidArgument: A part is not a plain identifier (naming ``what``).
    """
    parts = name.split(".")
    if len(parts) > 2 or not all(_IDENT.fullmatch(p) for p in parts):
        raise InvalidArgument(
            f"{what} must be an identifier (letters, digits, _; schema.table allowed), "
            f"got {str(name)[:70]!r}",
            argument=what,
        )
    return ".".join('"' + p + '"' for p in parts)


def _columns(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise InvalidArgument(f"{what} must be a non-empty list of column names", argument=what)
    return [quote_ident(c, what) for c in value]


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    if isinstance(value, str | int | float | bool | None | list | dict):
        return value
    return str(value)


def _cursor_position(value: Any) -> dict[str, Any]:
    if isinstance(value, datetime):
        return {"cursor": value.isoformat(), "type": "timestamp"}
    if isinstance(value, int):
        return {"cursor": value, "type": "integer"}
    return {"cursor": str(value), "type": "text"}


def _cursor_value(position: Mapping[str, Any] | None) -> Any:
    if position is None or "cursor" not in position:
        return None
    value = position["cursor"]
    if position.get("type") == "timestamp":
        return datetime.fromisoformat(value)
    return value


class TableSource:
    """Rows of a table by a cursor column (module docs)."""

    def __init__(self, context: SourceContext) -> None:
        config = context.config
        self._context = context
        self._url = config_text(config, "url")
        self._table_name = config_text(config, "table")
        self._table = quote_ident(self._table_name, "config.table")
        self._cursor_name = config_text(config, "cursor", "id")
        self._cursor = quote_ident(self._cursor_name, "config.cursor")
        columns = config.get("columns")
        self._columns = "*" if columns is None else ", ".join(_columns(columns, "config.columns"))
        self._batch = int(config_number(config, "batch", 500, 1))
        self._interval = config_number(config, "interval", 1.0, 0.01)

    def _query(self, first: bool) -> str:
        where = "" if first else f"WHERE {self._cursor} > $1"
        return _SELECT.format(  # identifiers quoted by quote_ident
            columns=self._columns,
            cursor=self._cursor,
            table=self._table,
            where=where,
            limit=self._batch,
        )

    async def run(self, emit: Emit) -> None:
        """Poll for new rows until cancelled (or, scheduled, until none is left)."""
        conn = await asyncpg.connect(self._url)
        self._context.on_connection(True)
        cursor = _cursor_value(self._context.position)
        try:
            while True:
                if cursor is None:
                    rows = await conn.fetch(self._query(first=True))
                else:
                    rows = await conn.fetch(self._query(first=False), cursor)
                if rows:
                    cursor = rows[-1]["tideflow_cursor"]
                    await emit([self._record(r) for r in rows], _cursor_position(cursor))
                    continue
                if self._context.scheduled:
                    return
                await self._context.clock.sleep(self._interval)
        finally:
            await conn.close()

    def _record(self, row: Mapping[str, Any]) -> Record:
        data = {k: _json_value(v) for k, v in row.items() if k != "tideflow_cursor"}
        key = _json_value(row["tideflow_cursor"])
        return Record(id=f"{self._table_name}:{key}", data=data, channel=self._table_name)


class TableSink:
    """Writes each message as a row (module docs)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._url = config_text(config, "url")
        self._table = quote_ident(config_text(config, "table"), "config.table")
        upsert = config.get("upsert")
        self._keys: Sequence[str] = () if upsert is None else _columns(upsert, "config.upsert")
        self._pool: asyncpg.Pool | None = None
        self._statements: dict[tuple[str, ...], str] = {}

    async def open(self) -> None:
        """Open a small pool (the subscription's lanes write concurrently)."""
        self._pool = await asyncpg.create_pool(self._url, min_size=1, max_size=8)

    async def close(self) -> None:
        """Close the pool."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def _statement(self, columns: tuple[str, ...]) -> str:
        found = self._statements.get(columns)
        if found is not None:
            return found
        names = ", ".join(columns)
        sql = _INSERT.format(table=self._table, columns=names)
        if self._keys:
            updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in self._keys)
            action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
            sql += f" ON CONFLICT ({', '.join(self._keys)}) {action}"
        self._statements[columns] = sql
        return sql

    async def write(self, message: Any, event: Mapping[str, Any]) -> None:
        """Insert (or upsert) the row.

        Raises:
            SinkRejected: Not an object, or the table refuses it.
        """
        if not isinstance(message, dict) or not message:
            raise SinkRejected(
                f"a table sink's mapping must give an object of columns, got {message!r:.80}"
            )
        try:
            columns = tuple(quote_ident(str(c), "column") for c in message)
        except InvalidArgument as exc:
            raise SinkRejected(str(exc)) from None
        pool = self._pool
        if pool is None:
            raise ConnectionError("the sink is not open")
        try:
            async with pool.acquire() as conn:
                await conn.execute(self._statement(columns), orjson.dumps(message).decode())
        except _REFUSED as exc:
            raise SinkRejected(f"{type(exc).__name__}: {exc}") from None


def make_source(context: SourceContext) -> TableSource:
    """The source of a ``postgres`` connector."""
    return TableSource(context)


def make_sink(name: str, config: Mapping[str, Any]) -> TableSink:
    """The sink of a ``postgres`` connector."""
    return TableSink(config)
