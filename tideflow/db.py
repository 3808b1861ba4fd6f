"""Database access: the asyncpg pool, numbered migrations and named queries.

* :func:`open_database` is what ``tideflow serve`` uses: it connects to
  ``TIDEFLOW_DATABASE_URL`` or, without it, starts the embedded PostgreSQL
  (:mod:`tideflow.embedded`), applies pending migrations and yields a pool.
* :func:`migrate` applies ``tideflow/migrations/NNNN_name.sql`` in version
  order, each in its own transaction together with its row in
  ``tideflow_migrations``, under an advisory lock so that two processes
  starting at once do not race.
* :func:`load_queries` reads a subpackage's ``sql/queries.sql`` (or another
  file there): named blocks (a ``-- name --`` line, a ``-- description``
  line, then the SQL). Only a subpackage's gateway (``gateway.py``) loads
  and uses them.
* :func:`create_pool` gives connections back without asyncpg's reset query
  (a round trip per release) unless :func:`keeps_session_state` marked them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import LiteralString

import asyncpg

from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.embedded import EmbeddedServer, start_embedded
from tideflow.errors import ConfigurationError, StoreError
from tideflow.settings import Settings

log = logging.getLogger("tideflow.db")

MIGRATIONS_PACKAGE = "tideflow.migrations"
MIGRATION_LOCK_KEY = 0x5449_4445  # "TIDE": one advisory lock for every migrating process
SERVER_SETTINGS = {"jit": "off"}  # short OLTP statements: JIT compilation only adds latency

_SESSION_STATE: set[int] = set()
"""Server process ids of connections marked by :func:`keeps_session_state` (an id left
behind by a connection that closed costs a later one with that id one reset, no more)."""


def keeps_session_state(conn: asyncpg.Connection) -> None:
    """Mark ``conn`` as holding session state -- LISTEN, a session advisory lock, a
    session setting -- so that the pool resets it in full when it is given back.

    Every code path that makes such state marks its connection first: the pool's
    reset (:func:`create_pool`) skips the reset query for the others.
    """
    _SESSION_STATE.add(conn.get_server_pid())


async def _reset(conn: asyncpg.Connection) -> None:
    """The pool's reset of a connection given back (asyncpg rolled back an open
    transaction before it): the reset query (``UNLISTEN *``, advisory unlocks, ``RESET
    ALL``, ``CLOSE ALL``) only for a connection marked by :func:`keeps_session_state`.
    By default asyncpg runs it on every release: a round trip of its own each time a
    connection is given back, on the way of every request and event."""
    pid = conn.get_server_pid()
    if pid in _SESSION_STATE:
        _SESSION_STATE.discard(pid)
        await conn.execute(conn.get_reset_query())

_HEADER = re.compile(r"^-- ([a-z_][a-z0-9_]*) --\s*$")
_MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def parse_queries(text: str, source: str = "queries.sql") -> dict[str, LiteralString]:
    """Parse named SQL blocks.

    Raises:
        ConfigurationError: A block has no description or no SQL, or a name repeats.
    """
    queries: dict[str, LiteralString] = {}
    name: str | None = None
    body: list[str] = []

    def finish() -> None:
        if name is None:
            return
        if not body or not body[0].startswith("-- "):
            raise ConfigurationError(f"{source}: query {name!r} has no '-- description' line")
        sql = "\n".join(body[1:]).strip().rstrip(";").strip()
        if not sql:
            raise ConfigurationError(f"{source}: query {name!r} has no SQL")
        if name in queries:
            raise ConfigurationError(f"{source}: query {name!r} is defined twice")
        queries[name] = sql  # mypy treats LiteralString as str

    for line in text.splitlines():
        match = _HEADER.match(line)
        if match:
            finish()
            name, body = match.group(1), []
        elif name is not None and (body or line.strip()):
            body.append(line)
    finish()
    return queries


def load_queries(package: str, file: str = "queries.sql") -> dict[str, LiteralString]:
    """The named queries in ``<package>/sql/<file>`` (``tideflow`` for this module's own).

    Raises:
        ConfigurationError: The file is malformed (see :func:`parse_queries`).
    """
    text = resources.files(package).joinpath("sql", file).read_text("utf-8")
    return parse_queries(text, source=f"{package.replace('.', '/')}/sql/{file}")


_Q = load_queries("tideflow")


DB_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
)
"""What a failing or unreachable database raises through a pooled connection."""


@asynccontextmanager
async def acquired(pool: asyncpg.Pool, store: str) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection for a store's gateway; a database failure is raised as
    :class:`StoreError` naming ``store``."""
    try:
        async with pool.acquire() as conn:
            yield conn
    except DB_ERRORS as exc:
        raise StoreError(f"{store}: {type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered schema change.

    Attributes:
        version: The number in the file name (``0002_timers.sql`` is 2).
        name: The rest of the file name (``timers``).
        sql: The statements.
    """

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """MD5 of the SQL, recorded when applied, to notice a file edited afterwards."""
        return hashlib.md5(self.sql.encode(), usedforsecurity=False).hexdigest()


def list_migrations(package: str = MIGRATIONS_PACKAGE) -> list[Migration]:
    """Every migration in ``package``, by version.

    Raises:
        ConfigurationError: Two files share a version number.
    """
    found: dict[int, Migration] = {}
    for entry in resources.files(package).iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if not match:
            continue
        version = int(match.group(1))
        if version in found:
            raise ConfigurationError(
                f"two migrations have version {version}: "
                f"{found[version].name!r} and {match.group(2)!r}"
            )
        found[version] = Migration(version, match.group(2), entry.read_text("utf-8"))
    return [found[v] for v in sorted(found)]


async def migrate(
    conn: asyncpg.Connection, migrations: list[Migration] | None = None
) -> list[Migration]:
    """Apply the migrations not applied yet, in version order.

    Each runs in its own transaction with its record, so a failure leaves the
    earlier ones applied and the failed one not at all.

    Returns:
        The migrations applied now.

    Raises:
        StoreError: A migration failed (its version and name are in the message).
    """
    todo = list_migrations() if migrations is None else migrations
    keeps_session_state(conn)  # the lock, and whatever session settings a migration makes
    await conn.execute(_Q["migration_lock"], MIGRATION_LOCK_KEY)
    try:
        await conn.execute(_Q["create_migrations_table"])
        done = {
            row["version"]: row["checksum"] for row in await conn.fetch(_Q["applied_migrations"])
        }
        _warn_if_edited(todo, done)
        applied = []
        for migration in todo:
            if migration.version in done:
                continue
            try:
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        _Q["record_migration"],
                        migration.version,
                        migration.name,
                        migration.checksum,
                    )
            except asyncpg.PostgresError as exc:
                raise StoreError(
                    f"migration {migration.version:04d}_{migration.name}.sql failed: {exc}"
                ) from exc
            log.info("applied migration %04d_%s", migration.version, migration.name)
            applied.append(migration)
        return applied
    finally:
        await conn.execute(_Q["migration_unlock"], MIGRATION_LOCK_KEY)


def _warn_if_edited(migrations: list[Migration], applied: dict[int, str | None]) -> None:
    for migration in migrations:
        recorded = applied.get(migration.version)
        if recorded is not None and recorded != migration.checksum:
            log.warning(
                "migration %04d_%s.sql changed after it was applied to this database; "
                "the change is not in its schema (recreate the database to get it)",
                migration.version,
                migration.name,
            )


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """An asyncpg pool on ``dsn``.

    Raises:
        StoreError: The server cannot be reached.
    """
    try:
        return await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            server_settings=SERVER_SETTINGS,
            reset=_reset,
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise StoreError(f"cannot connect to PostgreSQL at {redact(dsn)}: {exc}") from exc


def redact(dsn: str) -> str:
    """``dsn`` without its password."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", dsn)


@dataclass(frozen=True, slots=True)
class Database:
    """An open database.

    Attributes:
        dsn: The connection string.
        pool: The pool on it.
        embedded: The embedded server, when Tideflow started one.
    """

    dsn: str
    pool: asyncpg.Pool
    embedded: EmbeddedServer | None

    def describe(self) -> str:
        """Where the data lives, for the start-up message."""
        if self.embedded is not None:
            return self.embedded.describe()
        return f"PostgreSQL at {redact(self.dsn)}"


@asynccontextmanager
async def open_database(
    settings: Settings, *, max_size: int = 10, apply_migrations: bool = True
) -> AsyncIterator[Database]:
    """Connect (starting the embedded server if no URL is configured), migrate, yield,
    close the pool and release the embedded server (it stops unless another live
    process uses it)."""
    embedded = None
    dsn = settings.database_url
    if dsn is None:
        embedded = await start_embedded(settings.home)
        dsn = embedded.dsn
    try:
        log.info("database: %s", embedded.describe() if embedded else redact(dsn))
        pool = await create_pool(dsn, max_size=max_size)
        try:
            if apply_migrations:
                async with pool.acquire() as conn:
                    await migrate(conn)
            yield Database(dsn, pool, embedded)
        finally:
            await close_pool(pool)
    finally:
        if embedded is not None:
            await asyncio.shield(asyncio.to_thread(embedded.stop))


async def try_node_lock(conn: asyncpg.Connection, node_id: str) -> bool:
    """Take ``node_id``'s advisory lock for ``conn``'s session (:mod:`tideflow.node`),
    with TCP keepalives on it; false when another session holds it."""
    keeps_session_state(conn)
    return bool(await conn.fetchval(_Q["node_lock"], node_id))


async def node_unlock(conn: asyncpg.Connection, node_id: str) -> None:
    """Give ``node_id``'s advisory lock back."""
    await conn.fetchval(_Q["node_unlock"], node_id)


async def close_pool(pool: asyncpg.Pool, grace_seconds: float = 10.0) -> None:
    """Close ``pool``; if a connection is still held after ``grace_seconds``, terminate it.

    A service that failed half-way through its start-up can leave a connection
    acquired; waiting for it would hang the process instead of letting it exit.
    """
    try:
        await asyncio.wait_for(pool.close(), grace_seconds)
    except TimeoutError:
        log.warning("database pool did not close within %.0f s; terminating it", grace_seconds)
        pool.terminate()


class DatabaseProbe:
    """Whether the database answers, for ``/healthz``: one ``SELECT 1`` at most per
    ``ttl`` seconds however often it is asked (the answer is cached in between).

    Args:
        pool: The pool to ask through.
        clock: For the cache's age.
        ttl: How long an answer is reused.
        timeout: How long a check may take before the database counts as down.
    """

    name = "database"

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        clock: Clock = SYSTEM_CLOCK,
        ttl: float = 1.0,
        timeout: float = 2.0,
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._ttl = ttl
        self._timeout = timeout
        self._checked_at: float | None = None
        self._answer: str | None = None
        self._lock = asyncio.Lock()

    async def check(self) -> str | None:
        """``None`` when the database answered, else why it did not."""
        async with self._lock:  # concurrent callers share one query
            now = self._clock.monotonic()
            if self._checked_at is None or now - self._checked_at >= self._ttl:
                self._answer = await self._ping()
                self._checked_at = self._clock.monotonic()
            return self._answer

    async def _ping(self) -> str | None:
        try:
            async with asyncio.timeout(self._timeout), self._pool.acquire() as conn:
                await conn.fetchval(_Q["ping"])
        except TimeoutError:
            return f"unreachable: no answer within {self._timeout:g} s"
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            return f"unreachable: {type(exc).__name__}: {exc}"
        return None
