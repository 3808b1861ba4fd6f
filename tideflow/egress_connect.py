"""Outbound clients that connect only where the egress policy allows.

The policy (:mod:`tideflow.egress`) is pure; this module is where it meets
the network. Both HTTP clients Tideflow uses resolve the host name here, have
the policy judge the name, the port and every resolved address, and connect
to one of the addresses just checked -- never resolving the name a second
time, so a DNS answer that changes between the check and the connection
(rebinding) changes nothing:

- httpx (fetches and function calls): :func:`egress_transport`, whose
  connection pool uses :class:`EgressBackend` to open its connections. Each
  new connection is checked, so every redirect a client follows is checked
  again at its hop. Proxies from the environment (``HTTP_PROXY``...) are not
  used -- a proxy would connect on the policy's behalf, unchecked -- so the
  client using the transport must not read them (``trust_env=False``); CA
  bundles from the environment (``SSL_CERT_FILE``) still count.
- aiohttp (subscription sinks): :class:`EgressResolver` checks names as they
  are resolved; IP literals, which aiohttp does not resolve, are checked by
  :meth:`~tideflow.egress.EgressPolicy.literal_refusal` before the request.

A refusal raises :class:`~tideflow.errors.EgressDenied` (code ``EGRESS_DENIED``).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

import aiohttp
import anyio
import httpcore
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult

from tideflow.egress import EgressPolicy

__all__ = ["POOL_LIMITS", "EgressBackend", "EgressResolver", "egress_transport", "resolve"]


async def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (an IP literal is its own address).

    Raises:
        OSError: The name does not resolve.
    """
    bare = host.strip("[]")
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in bare else socket.AF_INET, bare)
    except OSError:
        pass
    else:
        return [bare]
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class EgressBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, with every TCP connection checked by the policy first.

    Args:
        policy: What may be connected to.
        inner: The backend that opens the connections (AnyIO's by default).
    """

    def __init__(self, policy: EgressPolicy, inner: httpcore.AsyncNetworkBackend | None = None):
        self.policy = policy
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 -- httpcore's signature
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve ``host``, check it and its addresses, connect to the first that answers.

        Raises:
            EgressDenied: The policy refuses the name or one of its addresses.
            httpcore.ConnectError: The name does not resolve or no address answers.
        """
        try:
            with anyio.fail_after(timeout):
                addresses = await resolve(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        self.policy.check(host, port, addresses)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # resolve() returns at least one address
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 -- httpcore's signature
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Refused unless the policy allows everything (a socket file is a local service)."""
        if not self.policy.allow_all:
            raise httpcore.ConnectError("the egress policy refuses Unix sockets")
        return await self._inner.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        """Sleep as the inner backend does."""
        await self._inner.sleep(seconds)


POOL_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)
"""httpx's own default limits (a bare httpcore pool would allow 10 connections)."""


def egress_transport(
    policy: EgressPolicy, limits: httpx.Limits = POOL_LIMITS
) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose connections :class:`EgressBackend` opens.

    Args:
        policy: What may be connected to.
        limits: The pool's limits (httpx's defaults unless given).
    """
    transport = httpx.AsyncHTTPTransport(limits=limits)
    # httpx offers no way to pass a network backend; its pool is rebuilt with
    # one (the same class, limits and TLS context httpx itself would use).
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),  # SSL_CERT_FILE/SSL_CERT_DIR still count
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=EgressBackend(policy),
    )
    return transport


class EgressResolver(AbstractResolver):
    """aiohttp's resolver, with every resolved name checked by the policy.

    Args:
        policy: What may be connected to.
    """

    def __init__(self, policy: EgressPolicy) -> None:
        self.policy = policy
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The addresses of ``host``, if the policy allows them all.

        Raises:
            EgressDenied: The policy refuses the name or one of its addresses.
        """
        found = await self._inner.resolve(host, port, family)
        self.policy.check(host, port, [entry["host"] for entry in found])
        return found

    async def close(self) -> None:
        """Close the inner resolver."""
        await self._inner.close()
