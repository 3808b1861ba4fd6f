"""Shared fixtures: a real PostgreSQL for the tests that ask for one.

Like procrastinate's fixture: a session-scoped server -- the one named by
``TIDEFLOW_TEST_DATABASE_URL`` if set (e.g. the system PostgreSQL 15,
``postgresql://postgres@127.0.0.1:5432/postgres``), else an embedded
PostgreSQL 18 in a temporary directory, deleted at the end. Migrations are
applied once to a template database; each test gets a fresh database copied
from it (``CREATE DATABASE ... TEMPLATE``) and dropped afterwards. Commits are
real, so LISTEN/NOTIFY and multi-connection tests behave as in production.

Database names carry a per-session suffix, so several pytest runs can share
one server. Only tests that request ``pg_url`` or ``pool`` start anything.

``temporal_server``: one Temporal dev server for the session, started by the
first test that asks for it (``tests/support/temporal.py``).

The conformance corpus (``../shared/conformance``, see
``tests/support/conformance.py``): the tests that skip for want of it make one
line of the terminal summary instead of one per test, and under ``CI=true``
they fail the session.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.support.conformance import ABSENT, CONFORMANCE, ROOT
from tests.support.temporal import DevServer, start_dev_server

SERVER_URL_ENV = "TIDEFLOW_TEST_DATABASE_URL"


def with_database(url: str, database: str) -> str:
    """``url`` pointing at another database on the same server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A connection URL to a PostgreSQL server (its maintenance database)."""
    if url := os.environ.get(SERVER_URL_ENV):
        yield url
        return
    from tideflow.embedded import start_embedded_sync

    tmp = Path(tempfile.mkdtemp(prefix="tideflow-pg-"))
    server = start_embedded_sync(tmp / "pgdata", cleanup_mode="delete")
    try:
        yield server.dsn
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def _db_names() -> tuple[str, list[int]]:
    return f"{os.getpid()}_{secrets.token_hex(3)}", [0]


@pytest.fixture(scope="session")
async def pg_template(pg_server_url: str, _db_names: tuple[str, list[int]]) -> AsyncIterator[str]:
    """The name of a database with every migration applied (copied for each test)."""
    import asyncpg

    from tideflow.db import migrate

    name = f"tideflow_template_{_db_names[0]}"
    admin = await asyncpg.connect(pg_server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        conn = await asyncpg.connect(with_database(pg_server_url, name))
        try:
            await migrate(conn)
        finally:
            await conn.close()
        yield name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def pg_url(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    """The URL of a fresh, migrated database for this test only."""
    import asyncpg

    suffix, counter = _db_names
    counter[0] += 1
    name = f"t_{suffix}_{counter[0]}"
    admin = await asyncpg.connect(pg_server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
        yield with_database(pg_server_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def pool(pg_url: str) -> AsyncIterator[object]:
    """An asyncpg pool on this test's database."""
    from tideflow.db import create_pool

    created = await create_pool(pg_url, min_size=1, max_size=8)
    try:
        yield created
    finally:
        await created.close()


@pytest.fixture(scope="session")
def temporal_server() -> Iterator[DevServer]:
    """One Temporal dev server for the session (``tests/support/temporal.py``)."""
    with start_dev_server() as server:
        yield server


# --- the conformance corpus: one summary line when absent, a failure in CI -----------

_CORPUS_SKIPS: list[pytest.TestReport | pytest.CollectReport] = []
"""This session's skips for a missing part of the corpus."""
_CORPUS_KEY = "skipped (no corpus)"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _corpus_skip(report: pytest.TestReport | pytest.CollectReport) -> bool:
    """Whether ``report`` is a skip for a missing part of the conformance corpus."""
    longrepr = report.longrepr
    return report.skipped and isinstance(longrepr, tuple) and ABSENT in str(longrepr[2])


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if _corpus_skip(report):
        _CORPUS_SKIPS.append(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if _corpus_skip(report):
        _CORPUS_SKIPS.append(report)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _CORPUS_SKIPS and _in_ci():
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line for the corpus skips (taken out of the per-test skip lines of ``-rs``)."""
    corpus = _CORPUS_SKIPS
    if not corpus:
        return
    stats = terminalreporter.stats
    rest = [r for r in stats.get("skipped", []) if not _corpus_skip(r)]
    stats.pop("skipped", None)
    if rest:
        stats["skipped"] = rest
    stats[_CORPUS_KEY] = corpus  # still counted in the final line
    files = len({r.nodeid.split("::")[0] for r in corpus})
    where = os.path.relpath(CONFORMANCE, ROOT)
    what = (
        f"{where} is absent: {_count(len(corpus), 'test')} in {_count(files, 'file')} skipped"
        " (a test parametrized over the corpus counts once)"
    )
    if _in_ci():
        terminalreporter.write_line(
            f"FAILED: CI=true needs the conformance corpus; {what}", red=True, bold=True
        )
    else:
        terminalreporter.write_line(f"conformance corpus: {what}", yellow=True)
