"""Console sessions live in PostgreSQL: a browser signed in through one ``tideflow serve``
process is signed in on another process on the same database (a cluster's other node, or
the same server after a restart), with the same CSRF token; signing out on one ends it on
both."""

from __future__ import annotations

import re
from pathlib import Path

import asyncpg
import httpx

from tests.support.served import serve_process

COOKIE = "tideflow_session"


async def _login(http: httpx.AsyncClient, url: str, token: str) -> str:
    answer = await http.post(f"{url}/ui/login", data={"token": token, "next": "/ui/instances"})
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/ui/instances"
    cookie = answer.cookies.get(COOKIE)
    assert cookie, answer.headers
    return cookie


def _jar(cookie: str | None) -> dict[str, str]:
    return {"cookie": f"{COOKIE}={cookie}"} if cookie else {}


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page[:500]
    return found.group(1)


async def _stored(pg_url: str) -> str:
    conn = await asyncpg.connect(pg_url)
    try:
        text: str = await conn.fetchval(
            "SELECT string_agg(row_to_json(s)::text, '') FROM tideflow_console_sessions s"
        )
    finally:
        await conn.close()
    return text


async def test_a_session_made_on_one_process_works_on_another(pg_url: str, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        serve_process(pg_url, tmp_path / "a") as one,
        serve_process(pg_url, tmp_path / "b", token=one.token) as two,
    ):
        async with httpx.AsyncClient(timeout=30) as http:
            page = f"{two.url}/ui/instances"
            assert (await http.get(page)).status_code == 303  # no session: the login page
            cookie = await _login(http, one.url, one.token)
            http.cookies.clear()  # the cookie goes only where the test sends it
            on_one = await http.get(f"{one.url}/ui/instances", headers=_jar(cookie))
            on_two = await http.get(page, headers=_jar(cookie))
            assert (on_one.status_code, on_two.status_code) == (200, 200), on_two.text[:300]
            assert "Sign out" in on_two.text
            csrf = _csrf(on_two.text)
            assert csrf == _csrf(on_one.text)  # one session, wherever it is read

            stored = await _stored(pg_url)
            assert cookie not in stored
            assert one.token not in stored

            logout = f"{two.url}/ui/logout"
            stale = await http.post(logout, data={"csrf": csrf + "x"}, headers=_jar(cookie))
            assert stale.status_code == 403
            out = await http.post(logout, data={"csrf": csrf}, headers=_jar(cookie))
            assert (out.status_code, out.headers["location"]) == (303, "/ui/login")
            http.cookies.clear()
            after = await http.get(f"{one.url}/ui/instances", headers=_jar(cookie))
            assert after.status_code == 303
            assert after.headers["location"].startswith("/ui/login")
