"""Run the API under uvicorn (what ``tideflow serve`` does)."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import signal
import socket
import ssl
import sys
from types import FrameType

import uvicorn

from tideflow import logs
from tideflow.api.app import create_app
from tideflow.api.services import ServicesOpener
from tideflow.db import redact
from tideflow.embedded import stop_all
from tideflow.errors import ConfigurationError
from tideflow.logs import LogFormat
from tideflow.settings import Settings

_STARTUP_FAILURE = 3
"""uvicorn's exit status when the application did not start."""

log = logging.getLogger("tideflow.server")


def describe_database(settings: Settings) -> str:
    """Where the data lives, for the start-up line (the password is never shown)."""
    if settings.database_url is None:
        return f"{settings.home / 'pgdata'} (embedded PostgreSQL)"
    return f"PostgreSQL at {redact(settings.database_url)}"


def check_tls(settings: Settings) -> None:
    """Check ``--tls-cert``/``--tls-key`` before anything starts: both or neither,
    readable, PEM, and the key the certificate's.

    Raises:
        ConfigurationError: They are not, with what is wrong.
    """
    cert, key = settings.tls_cert, settings.tls_key
    if cert is None and key is None:
        return
    if cert is None or key is None:
        raise ConfigurationError("--tls-cert and --tls-key go together: give both or neither")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except FileNotFoundError as exc:
        raise ConfigurationError(f"TLS: no such file: {exc.filename}") from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigurationError(
            f"TLS: cannot use certificate {cert} with key {key}: {exc}"
        ) from None


def run_server(
    settings: Settings,
    open_services: ServicesOpener,
    *,
    log_level: str = "info",
    log_format: LogFormat = "text",
    access_log: bool = False,
) -> None:
    """Serve the API on ``settings.host:settings.port`` until interrupted.

    uvicorn picks uvloop and httptools when they are installed (the fast path).
    ``open_services`` opens what the routes use (``tideflow serve``: the whole
    system, :func:`tideflow.serve.open_system_with` its flags). With
    ``settings.tls_cert`` and ``tls_key`` it speaks HTTPS (checked first with
    :func:`check_tls`). Its log lines (Tideflow's and uvicorn's, with one line a
    request under ``access_log``) go to stderr as text or as JSON (``log_format``).
    """
    app = create_app(settings, open_services)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        ws="none",
        lifespan="on",
        log_level=log_level,
        log_config=None,  # logs.configure below: one handler, text or JSON
        access_log=access_log,
        server_header=False,
        timeout_graceful_shutdown=5,  # long-polling readers must not hold up a restart
    )
    logs.configure(log_level, log_format, access_log=access_log)
    server = DrainingServer(config, app.state.draining)
    # uvicorn drains on SIGINT and SIGTERM alike, then raises the signal again: SIGINT
    # becomes KeyboardInterrupt, SIGTERM would end the process at once with its default
    # action. _Stopped makes both unwind here, so what follows always runs.
    previous = signal.signal(signal.SIGTERM, _raise_stopped)
    try:
        server.run()
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop_all()  # the embedded PostgreSQL, had the application's shutdown not released it
    if not server.started:  # as uvicorn.run: the lifespan failed
        sys.exit(_STARTUP_FAILURE)


class _Stopped(Exception):
    """SIGTERM, raised again by uvicorn after its graceful shutdown."""


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise _Stopped


class DrainingServer(uvicorn.Server):
    """A uvicorn server that sets ``draining`` as its shutdown begins, so that the
    long polls still open (:mod:`tideflow.api.long_poll`) answer at once instead of
    holding the shutdown up until the graceful timeout, and ``/readyz`` says 503. A
    second SIGINT or SIGTERM does not cut the drain short."""

    def __init__(self, config: uvicorn.Config, draining: asyncio.Event) -> None:
        super().__init__(config)
        self.draining = draining

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        name = signal.Signals(sig).name
        if self.should_exit:
            # uvicorn would skip the application's shutdown on a second SIGINT: leases kept,
            # the embedded PostgreSQL left running. The drain is bounded; SIGKILL is there.
            log.info("%s: already draining (SIGKILL stops at once, without a drain)", name)
            return
        log.info(
            "%s: draining -- no new requests; in-flight steps finish or are handed back; "
            "leases released",
            name,
        )
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.draining.set()
        await super().shutdown(sockets)
