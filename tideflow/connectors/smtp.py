"""The email sink: one message per event over SMTP (``pip install 'tideflow[smtp]'``).

``config``: ``url`` (``smtp://[user:password@]host[:port]``, port 25; ``smtps://`` for
TLS from the start, port 465; a plain ``smtp://`` server that offers STARTTLS is
upgraded), ``from``, ``to`` (an address or a list), ``subject`` (default
``Tideflow: <the event's type>``), ``idle``. Best give the URL as a secret reference.

The message is the mapping's output: an object with ``text`` (the body; any other
value is sent as JSON) and optionally ``subject`` and ``to``; anything else is the
body, as JSON (default: the whole event). ``Message-ID`` is derived from the event's
source and id, so a mail sent twice after a crash carries the same id (at-least-once:
the receiving side may keep both). A recipient or sender the server refuses for good
is dead-lettered at once.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote, urlsplit

import aiosmtplib
import orjson

from tideflow.connectors.base import config_text
from tideflow.errors import InvalidArgument, SinkRejected


def _addresses(value: Any, what: str) -> list[str]:
    found = [value] if isinstance(value, str) else value
    if not isinstance(found, list) or not found or not all(isinstance(a, str) and a for a in found):
        raise InvalidArgument(f"{what} must be an address or a list of them", argument=what)
    return list(found)


class MailSink:
    """Sends each message as an email (module docs)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        url = config_text(config, "url")
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise InvalidArgument(
                "config.url must be smtp://host[:port] or smtps://host[:port]",
                argument="config.url",
            )
        self._tls = parts.scheme == "smtps"
        self._host = parts.hostname
        self._port = parts.port or (465 if self._tls else 25)
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._from = config_text(config, "from")
        self._to = _addresses(config.get("to"), "config.to")
        subject = config.get("subject")
        self._subject = None if subject is None else config_text(config, "subject")
        self._client: aiosmtplib.SMTP | None = None
        self._sending = asyncio.Lock()  # one SMTP conversation at a time on the connection

    async def open(self) -> None:
        """Connect (and log in when the URL names a user)."""
        client = aiosmtplib.SMTP(hostname=self._host, port=self._port, use_tls=self._tls)
        await client.connect()
        try:
            if self._user is not None:
                await client.login(self._user, self._password or "")
        except BaseException:
            client.close()
            raise
        self._client = client

    def _email(self, message: Any, event: Mapping[str, Any]) -> EmailMessage:
        fields = message if isinstance(message, dict) and "text" in message else {"text": message}
        text = fields["text"]
        body = text if isinstance(text, str) else orjson.dumps(text).decode()
        email = EmailMessage()
        email["From"] = self._from
        email["To"] = ", ".join(_addresses(fields.get("to", self._to), "to"))
        email["Subject"] = str(
            fields.get("subject") or self._subject or f"Tideflow: {event.get('type', 'event')}"
        )
        key = f"{event.get('source', '')}\n{event.get('id', '')}".encode()
        email["Message-ID"] = f"<{hashlib.sha256(key).hexdigest()[:32]}@tideflow>"
        email.set_content(body)
        return email

    async def write(self, message: Any, event: Mapping[str, Any]) -> None:
        """Send one email.

        Raises:
            SinkRejected: A recipient or the sender is refused, or the message is malformed.
        """
        if self._client is None:
            raise ConnectionError("the sink is not open")
        try:
            email = self._email(message, event)
        except (InvalidArgument, ValueError) as exc:
            raise SinkRejected(f"not an email: {exc}") from None
        async with self._sending:
            try:
                await self._client.send_message(email)
            except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPSenderRefused) as exc:
                raise SinkRejected(str(exc)) from None

    async def close(self) -> None:
        """Say goodbye and disconnect."""
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.quit()
            except aiosmtplib.SMTPException:
                client.close()


def make_sink(name: str, config: Mapping[str, Any]) -> MailSink:
    """The sink of an ``smtp`` connector."""
    return MailSink(config)
