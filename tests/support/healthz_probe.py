"""The second client of issue 11's probes: asks ``/healthz`` until told to stop.

Run as its own process (``python -m tests.support.healthz_probe URL OUT
PAUSE``, started by :class:`tests.support.served.HealthProber`), so what it
measures is the server: a thread of the test process would share its GIL with
the test's own work -- building and encoding a 200,000-item input holds it for
tens of milliseconds -- and count that as the server's latency.

One keep-alive HTTP/1.1 connection (opened again after an error). Each answer
is one line appended to ``OUT``: when the request was sent
(``time.monotonic()``, the same clock in every process of the machine), its
latency in seconds, and its status (0: no answer at all). SIGTERM ends it
after the request in flight.
"""

from __future__ import annotations

import http.client
import signal
import sys
import time
from types import FrameType
from urllib.parse import urlsplit


def main(url: str, out: str, pause: float) -> None:
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    parts = urlsplit(url)
    connection: http.client.HTTPConnection | None = None
    with open(out, "a", buffering=1) as lines:
        lines.write("ready\n")
        while not stopping:
            began = time.monotonic()
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(
                        parts.hostname or "127.0.0.1", parts.port, timeout=10
                    )
                connection.request("GET", "/healthz")
                answer = connection.getresponse()
                answer.read()
                status = answer.status
            except (OSError, http.client.HTTPException):
                status = 0
                if connection is not None:
                    connection.close()
                connection = None
            lines.write(f"{began!r} {time.monotonic() - began!r} {status}\n")
            time.sleep(pause)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
