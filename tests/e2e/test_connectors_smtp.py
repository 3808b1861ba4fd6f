"""The email sink through a real ``tideflow serve`` and a local ``aiosmtpd`` server.

Accepted orders become one email each (the mapping gives the subject and the text;
the recipient and the sender come from the config, the SMTP URL as a secret
reference); a recipient the server refuses for good is dead-lettered, not retried.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.connectors import bus_events, create_connector, eventually, served
from tests.support.served import copied_database
from tideflow.api.testserver import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


class Inbox:
    """An aiosmtpd handler keeping what it received; it refuses ``nobody@...``."""

    def __init__(self) -> None:
        self.mails: list[tuple[list[str], Any]] = []

    async def handle_RCPT(  # aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("nobody@"):
            return "550 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        self.mails.append((list(envelope.rcpt_tos), message_from_bytes(content)))
        return "250 Message accepted"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
async def database(
    pg_server_url: str, pg_template: str, _db_names: tuple[str, list[int]]
) -> AsyncIterator[str]:
    async with copied_database(pg_server_url, pg_template, f"t_{_db_names[0]}_smtp") as url:
        yield url


def _event(n: int, to: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"orderId": n}
    if to is not None:
        data["to"] = to
    return {
        "specversion": "1.0", "id": f"a-{n}", "source": "/shop",
        "type": "com.example.order.accepted", "data": data,
    }  # fmt: skip


async def test_events_become_emails_and_refused_recipients_dead_letter(
    database: str, tmp_path: Path, inbox: tuple[Inbox, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, port = inbox
    monkeypatch.setenv("TIDEFLOW_SECRET_SMTP_URL", f"smtp://127.0.0.1:{port}")
    async with served(database, tmp_path) as server, server.async_client() as http:
        await create_connector(http, {
            "name": "mail", "kind": "sink", "type": "smtp", "bus": "default",
            "config": {"url": {"secret": "SMTP_URL"}, "from": "tideflow@example.com",
                       "to": ["ops@example.com"], "idle": 0.5},
            "mapping": '{subject: "Order \\(.data.orderId) accepted", text: .data,'
                       ' to: (.data.to // "ops@example.com")}',
            "subscription": {"delivery": {"retry": 0}},
        })  # fmt: skip
        batch = [_event(1), _event(2), _event(3, to="nobody@example.com")]
        posted = await http.post(
            "/events", content=json.dumps(batch),
            headers={"content-type": "application/cloudevents-batch+json"},
        )  # fmt: skip
        assert posted.status_code == 202, posted.text

        async def settled() -> dict[str, Any] | None:
            shown = (await http.get("/connectors/mail")).json()
            return shown if shown["lag"] == 0 and shown["committedOffset"] >= 3 else None

        shown = await eventually(settled)
        assert (shown["events"], shown["deadLettered"]) == (2, 1)
        subjects = sorted(m["Subject"] for _, m in handler.mails)
        assert subjects == ["Order 1 accepted", "Order 2 accepted"]
        to, mail = handler.mails[0]
        assert to == ["ops@example.com"]
        assert mail["From"] == "tideflow@example.com"
        assert json.loads(mail.get_payload())["orderId"] in (1, 2)
        letters = await bus_events(http, "default.deadletter")
        assert [e["deadletterid"] for e in letters] == ["a-3"]
        assert "550" in letters[0]["deadletterreason"]
