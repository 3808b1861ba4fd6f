"""The connectors' gateway to PostgreSQL: the only code that uses ``connectors/sql/queries.sql``."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg

from tideflow.connectors.spec import Connector, ConnectorSpec, ConnectorState
from tideflow.db import acquired, load_queries
from tideflow.errors import AlreadyExists, ConnectorNotFound

_Q = load_queries("tideflow.connectors")


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _row(row: Mapping[str, Any]) -> Connector:
    values = dict(row)
    values["spec"] = _json(values["spec"])
    values["position"] = _json(values["position"])
    return Connector.from_row(values)


class PostgresConnectors:
    """Connectors, their state, positions and counters in ``tideflow_connectors``.

    Args:
        pool: The asyncpg pool (migrations applied).
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    def _conn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return acquired(self.pool, "connectors")

    async def create(self, spec: ConnectorSpec, now: datetime) -> Connector:
        """Store a new connector.

        Raises:
            AlreadyExists: The name is taken.
        """
        async with self._conn() as conn:
            row = await conn.fetchrow(
                _Q["insert_connector"],
                spec.name,
                spec.kind.value,
                spec.type,
                spec.bus,
                json.dumps(spec.to_json()),
                now,
            )
        if row is None:
            raise AlreadyExists(f"a connector named {spec.name!r} exists already")
        return _row(row)

    async def apply(self, spec: ConnectorSpec, now: datetime) -> bool:
        """Store a connector declared in a file: create it, or replace its declaration if it
        changed (position and counters kept). True when something was written."""
        async with self._conn() as conn:
            row = await conn.fetchrow(
                _Q["apply_connector"],
                spec.name,
                spec.kind.value,
                spec.type,
                spec.bus,
                json.dumps(spec.to_json()),
                now,
            )
        return row is not None

    async def find(self, name: str) -> Connector | None:
        """The connector, or ``None``."""
        async with self._conn() as conn:
            row = await conn.fetchrow(_Q["get_connector"], name)
        return None if row is None else _row(row)

    async def get(self, name: str) -> Connector:
        """The connector.

        Raises:
            ConnectorNotFound: No such connector.
        """
        found = await self.find(name)
        if found is None:
            raise ConnectorNotFound(f"no connector named {name!r}")
        return found

    async def list(self) -> list[Connector]:
        """Every connector, by name."""
        async with self._conn() as conn:
            rows = await conn.fetch(_Q["list_connectors"])
        return [_row(r) for r in rows]

    async def versions(self) -> dict[str, tuple[ConnectorState, int]]:
        """Every connector's state and version, by name."""
        async with self._conn() as conn:
            rows = await conn.fetch(_Q["connector_versions"])
        return {r["name"]: (ConnectorState(r["state"]), r["version"]) for r in rows}

    async def delete(self, name: str) -> None:
        """Forget a connector.

        Raises:
            ConnectorNotFound: No such connector.
        """
        async with self._conn() as conn:
            row = await conn.fetchrow(_Q["delete_connector"], name)
        if row is None:
            raise ConnectorNotFound(f"no connector named {name!r}")

    async def set_state(self, name: str, state: ConnectorState, now: datetime) -> Connector:
        """Pause or resume (bumps the version).

        Raises:
            ConnectorNotFound: No such connector.
        """
        async with self._conn() as conn:
            row = await conn.fetchrow(_Q["set_connector_state"], name, state.value, now)
        if row is None:
            raise ConnectorNotFound(f"no connector named {name!r}")
        return _row(row)

    async def save_position(
        self, name: str, position: Mapping[str, Any], events: int, now: datetime
    ) -> None:
        """Store a source's position once the events before it are committed."""
        async with self._conn() as conn:
            await conn.execute(_Q["save_position"], name, json.dumps(position), events, now)

    async def add_progress(
        self, name: str, *, events: int = 0, errors: int = 0, error: str | None, now: datetime
    ) -> None:
        """Add to the counters; ``error`` (if any) becomes the last error."""
        async with self._conn() as conn:
            await conn.execute(_Q["add_progress"], name, events, errors, error, now)
