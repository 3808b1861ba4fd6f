"""Migrations: numbered files applied in order, recorded, once, under a lock; named queries."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import with_database
from tideflow.db import (
    Migration,
    list_migrations,
    load_queries,
    migrate,
    open_database,
    parse_queries,
)
from tideflow.errors import ConfigurationError, StoreError
from tideflow.runtime.status import InstanceStatus
from tideflow.settings import Settings

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "tideflow"

_SCHEMA = """
SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' '
       || is_nullable || ' ' || coalesce(column_default, '') || ' '
       || coalesce(identity_generation, '') AS item
FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT 'relation ' || c.relname || ' ' || c.relkind::text || ' '
       || coalesce(array_to_string(c.reloptions, ','), '') || ' '
       || coalesce(pg_get_partkeydef(c.oid), '')
FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
UNION ALL
SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'function ' || p.proname || '(' || pg_get_function_arguments(p.oid) || ') '
       || pg_get_function_result(p.oid) || ' ' || md5(p.prosrc)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(t.oid)
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace
UNION ALL
SELECT 'constraint ' || conrelid::regclass || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace
ORDER BY 1
"""


@pytest.fixture
async def blank_url(pg_server_url: str, pg_url: str) -> AsyncIterator[str]:
    """An empty database (no migrations applied)."""
    name = pg_url.rsplit("/", 1)[1].split("?")[0] + "_blank"
    admin = await asyncpg.connect(pg_server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        yield with_database(pg_server_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def test_every_sql_file_is_a_numbered_migration() -> None:
    migrations = list_migrations()
    files = sorted(p.name for p in (PACKAGE_ROOT / "migrations").glob("*.sql"))
    assert [f"{m.version:04d}_{m.name}.sql" for m in migrations] == files  # none ignored
    versions = [m.version for m in migrations]
    assert all(a < b for a, b in itertools.pairwise(versions))  # increasing
    # no migration ever had 0005 (see the migrations package); a new migration takes the next number
    assert set(range(1, versions[-1] + 1)) - set(versions) == {5}
    assert migrations[0].name == "eventstore"
    assert all(m.sql.strip() for m in migrations)


async def test_migrate_applies_each_once_and_records_it(blank_url: str) -> None:
    conn = await asyncpg.connect(blank_url)
    try:
        applied = await migrate(conn)
        assert [m.version for m in applied] == [m.version for m in list_migrations()]
        assert await migrate(conn) == []
        rows = await conn.fetch("SELECT version, name FROM tideflow_migrations ORDER BY version")
        assert [(r["version"], r["name"]) for r in rows] == [
            (m.version, m.name) for m in list_migrations()
        ]
        assert await conn.fetchval("SELECT to_regclass('tideflow_events') IS NOT NULL")
    finally:
        await conn.close()


async def test_two_processes_migrating_at_once_do_not_race(blank_url: str) -> None:
    conns = [await asyncpg.connect(blank_url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(conn) for conn in conns))
        assert sorted(len(r) for r in results) == [0, 0, len(list_migrations())]
    finally:
        for conn in conns:
            await conn.close()


async def test_one_by_one_gives_the_same_schema_as_all_at_once(blank_url: str, pg_url: str) -> None:
    conn = await asyncpg.connect(blank_url)
    template = await asyncpg.connect(pg_url)  # migrated all at once
    try:
        for migration in list_migrations():  # as successive upgrades would
            await migrate(conn, [migration])
        step_by_step = [r["item"] for r in await conn.fetch(_SCHEMA)]
        at_once = [r["item"] for r in await template.fetch(_SCHEMA)]
        assert step_by_step == at_once
        assert any("tideflow_event_keys_pkey" in item for item in at_once)
    finally:
        await conn.close()
        await template.close()


async def test_schema_snapshot_is_the_migrated_schema(blank_url: str, pg_url: str) -> None:
    conn = await asyncpg.connect(blank_url)
    template = await asyncpg.connect(pg_url)  # every migration applied
    try:
        await conn.execute((PACKAGE_ROOT / "schema.sql").read_text("utf-8"))
        snapshot = [r["item"] for r in await conn.fetch(_SCHEMA)]
        migrated = [r["item"] for r in await template.fetch(_SCHEMA)]
        assert snapshot == migrated, (
            "tideflow/schema.sql is out of date; regenerate it: "
            "python -m tests.support.schema_snapshot > tideflow/schema.sql"
        )
        assert any(item.startswith("trigger CREATE TRIGGER") for item in migrated)
        assert any("fillfactor" in item for item in migrated)
    finally:
        await conn.close()
        await template.close()


async def test_the_status_column_allows_exactly_the_instance_statuses(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        check = await conn.fetchval(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'tideflow_instances'::regclass AND contype = 'c' "
            "AND pg_get_constraintdef(oid) LIKE '%status%'"
        )
    finally:
        await conn.close()
    assert set(re.findall(r"'([a-z]+)'", check)) == {s.value for s in InstanceStatus}


async def test_a_failing_migration_names_itself_and_keeps_earlier_ones(blank_url: str) -> None:
    conn = await asyncpg.connect(blank_url)
    try:
        good = Migration(9001, "good", "CREATE TABLE mig_good (x int);")
        bad = Migration(9002, "bad", "CREATE TABLE mig_bad (x int); SELECT no_such_function();")
        with pytest.raises(StoreError, match="9002_bad"):
            await migrate(conn, [good, bad])
        versions = await conn.fetch("SELECT version FROM tideflow_migrations")
        assert [r["version"] for r in versions] == [9001]
        assert await conn.fetchval("SELECT to_regclass('mig_good') IS NOT NULL")
        assert await conn.fetchval("SELECT to_regclass('mig_bad') IS NULL")
    finally:
        await conn.close()


async def test_an_edited_migration_is_reported(
    blank_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    conn = await asyncpg.connect(blank_url)
    try:
        await migrate(conn, [Migration(9001, "first", "CREATE TABLE mig_a (x int);")])
        rows = await conn.fetch("SELECT checksum FROM tideflow_migrations")
        assert [r["checksum"] for r in rows] == [
            Migration(9001, "first", "CREATE TABLE mig_a (x int);").checksum
        ]
        with caplog.at_level("WARNING", logger="tideflow.db"):
            edited = Migration(9001, "first", "CREATE TABLE mig_a (y int);")
            assert await migrate(conn, [edited]) == []
        assert "9001_first.sql changed after it was applied" in caplog.text
    finally:
        await conn.close()


def test_parse_queries() -> None:
    queries = parse_queries(
        "-- first --\n-- what it does\nSELECT 1;\n\n-- second --\n-- more\nSELECT $1\nFROM t;\n"
    )
    assert queries == {"first": "SELECT 1", "second": "SELECT $1\nFROM t"}
    for bad, message in [
        ("-- q --\nSELECT 1", "no '-- description'"),
        ("-- q --\n-- d\n", "no SQL"),
        ("-- q --\n-- d\nSELECT 1\n-- q --\n-- d\nSELECT 2", "defined twice"),
    ]:
        with pytest.raises(ConfigurationError, match=message):
            parse_queries(bad, source="x.sql")


def test_every_queries_file_parses() -> None:
    files = sorted(PACKAGE_ROOT.rglob("sql/*.sql"))
    assert PACKAGE_ROOT / "eventstore" / "sql" / "queries.sql" in files
    for path in files:
        package = ".".join(path.parent.parent.relative_to(PACKAGE_ROOT.parent).parts)
        queries = load_queries(package, path.name)
        assert queries, path
        assert all(sql.strip() for sql in queries.values())
    assert load_queries("tideflow.runtime") == load_queries("tideflow.runtime", "queries.sql")


@pytest.mark.slow
async def test_embedded_server_in_home_when_no_url(tmp_path: Path) -> None:
    settings = Settings(database_url=None, home=tmp_path / "home")
    async with open_database(settings, max_size=2) as database:
        try:
            assert database.embedded is not None
            assert database.embedded.pgdata == tmp_path / "home" / "pgdata"
            assert str(tmp_path / "home" / "pgdata") in database.describe()
            assert "host=" in database.dsn  # a Unix socket, no TCP port
            version = await database.pool.fetchval("SHOW server_version_num")
            assert int(version) >= 150000
            assert await database.pool.fetchval("SELECT count(*) FROM tideflow_migrations") == len(
                list_migrations()
            )
        finally:
            if database.embedded is not None:
                database.embedded.stop()
    assert (tmp_path / "home" / "pgdata" / "PG_VERSION").exists()
