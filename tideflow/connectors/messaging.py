"""The connectors as message brokers for AsyncAPI calls (runtime.functions.messaging).

:class:`ConnectorBrokers` sends one message through a connector type's sink and
receives messages through its source, the same code that runs connectors. The
runtime does not import the connectors (they sit above it); the host that
builds a :class:`~tideflow.runtime.functions.FunctionInvoker` (``tideflow
serve``, ``tideflow run``) hands it one of these.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.connectors.base import SourceContext, sink_factory, source_factory
from tideflow.connectors.mapping import Record
from tideflow.errors import FunctionCallError, MissingExtra, SinkRejected
from tideflow.supervise import first_done


class ConnectorBrokers:
    """Sends and receives single messages through the connectors' sinks and sources."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        """Args:
        clock: For the sources' poll intervals.
        """
        self._clock = clock

    async def send(
        self, kind: str, config: Mapping[str, Any], message: Any, message_id: str, seconds: float
    ) -> None:
        """Publish ``message`` with the sink of connector type ``kind``; wait for the broker.

        Raises:
            FunctionCallError: ``NotSupported`` (client library missing), ``Rejected``,
                ``Timeout``, ``NoStream`` (NATS), ``ConnectionError``.
        """
        try:
            sink = sink_factory(kind)(f"asyncapi-{message_id}", config)
            await sink.open()
            try:
                async with asyncio.timeout(seconds):
                    await sink.write(message, {"id": message_id})
            finally:
                await sink.close()
        except MissingExtra as exc:
            raise FunctionCallError(str(exc), code="NotSupported", retryable=False) from None
        except SinkRejected as exc:
            raise FunctionCallError(f"refused: {exc}", code="Rejected", retryable=False) from None
        except TimeoutError:
            raise FunctionCallError("timed out", code="Timeout", retryable=True) from None
        except FunctionCallError:
            raise
        except Exception as exc:  # the client libraries' own errors: connection, protocol
            if kind == "nats" and "NoStream" in type(exc).__name__:
                raise FunctionCallError(
                    f"no JetStream stream captures subject {config.get('subject')!r} (a nats "
                    "channel is published through JetStream, as by the nats connector sink)",
                    code="NoStream",
                    retryable=False,
                ) from None
            raise FunctionCallError(
                f"{type(exc).__name__}: {exc}", code="ConnectionError", retryable=True
            ) from None

    async def receive(
        self, kind: str, config: Mapping[str, Any], amount: int, seconds: float
    ) -> list[Any]:
        """The payloads the source of ``kind`` receives within ``seconds`` (at most ``amount``).

        Raises:
            FunctionCallError: ``NotSupported`` (client library missing), ``ConnectionError``.
        """
        received: list[Any] = []
        enough = asyncio.Event()

        async def collect(records: Sequence[Record], position: Mapping[str, Any] | None) -> None:
            for record in records:
                if len(received) < amount:
                    data = record.data if record.data_base64 is None else record.data_base64
                    received.append(data)
            if len(received) >= amount:
                enough.set()

        try:
            source = source_factory(kind)(
                SourceContext(
                    name=f"asyncapi-{kind}",
                    config=config,
                    position=None,
                    clock=self._clock,
                    scheduled=False,
                    on_connection=lambda _: None,
                )
            )
        except MissingExtra as exc:
            raise FunctionCallError(str(exc), code="NotSupported", retryable=False) from None
        running, _, _ = await first_done(source.run(collect), enough.wait(), asyncio.sleep(seconds))
        failure = None if running.cancelled() else running.exception()
        if failure is not None:
            raise FunctionCallError(
                f"{type(failure).__name__}: {failure}", code="ConnectionError", retryable=True
            )
        return received
