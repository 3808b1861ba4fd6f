"""The egress policy: which outbound fetches and calls a process may make (pure).

Every outbound client of Tideflow asks this one policy: deploy-time
reference fetches (:mod:`tideflow.references`), function calls and the
documents they need (:mod:`tideflow.runtime.functions`), OAuth2 token
requests, and subscription sinks (:mod:`tideflow.triggers.delivery`). The
clients resolve a host name, ask :meth:`EgressPolicy.refusal` about the name,
the port and *every* resolved address, and connect only to an address the
policy checked (:mod:`tideflow.egress_connect`), so a name that resolves to
``127.0.0.1`` is loopback, whatever it is called. Redirects, where a client
follows them, connect again and are checked again at every hop.

Rules of a server's policy (:meth:`EgressPolicy.for_server`):

- public (globally routable) addresses are allowed;
- loopback, private, link-local (``169.254.0.0/16``, ``fe80::/10``, where
  cloud metadata services answer), shared (``100.64.0.0/10``), unspecified,
  multicast and reserved addresses are refused unless the allow list names
  them: ``TIDEFLOW_EGRESS_ALLOW`` (comma-separated) and ``tideflow serve
  --allow-egress`` (repeatable), each entry a host name, an address or a
  network in CIDR notation, with an optional port (``127.0.0.1:9000``,
  ``10.0.0.0/8``, ``[::1]:8080``, ``api.internal:443``). A host name entry
  allows that name whatever it resolves to (the operator vouches for it);
- IPv4-mapped IPv6 addresses (``::ffff:127.0.0.1``) are judged as the IPv4
  address they carry;
- local documents (paths, ``file:`` URIs) are read only inside the
  operator's folders (``--workflows``), never elsewhere, and never for a
  definition sent over HTTP (refused at deploy).

``tideflow run`` uses :meth:`EgressPolicy.everything`: the operator runs
their own file on their own machine.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from tideflow.errors import EgressDenied, InvalidArgument

__all__ = [
    "ALLOW_HINT",
    "CALL_LIMITS",
    "DOCUMENT_LIMITS",
    "REFERENCE_LIMITS",
    "AllowEntry",
    "EgressPolicy",
    "FetchLimits",
    "address_kind",
    "is_remote",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_HINT: Final = "--allow-egress or TIDEFLOW_EGRESS_ALLOW"
"""Where the allow list is set, as error messages name it."""

MEBIBYTE: Final = 1024 * 1024
REMOTE_SCHEMES: Final = ("http://", "https://")


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchLimits:
    """Bounds on one outbound fetch or call: its whole duration and its body."""

    timeout: float = 10.0
    """Seconds for the whole fetch (connect, redirects, body)."""
    max_bytes: int = MEBIBYTE
    """Largest body accepted."""
    max_redirects: int = 5
    """Redirects followed before giving up (where redirects are followed)."""


CALL_LIMITS: Final = FetchLimits(timeout=300.0, max_bytes=8 * MEBIBYTE)
"""A function call without a timeout of its own: 5 minutes in all (the body is
bounded by the value size limit, ``TIDEFLOW_VALUE_BYTES_LIMIT``)."""
DOCUMENT_LIMITS: Final = FetchLimits(timeout=30.0, max_bytes=8 * MEBIBYTE)
"""An OpenAPI document a call needs: 30 s and 8 MiB."""
REFERENCE_LIMITS: Final = FetchLimits()
"""A definition's external document fetched at deploy: 10 s, 1 MiB, 5 redirects."""


def is_remote(reference: str) -> bool:
    """Whether ``reference`` is an ``http(s)`` URL (anything else names a local file)."""
    return reference.lower().startswith(REMOTE_SCHEMES)


def _address(text: str) -> IPAddress | None:
    try:
        found = ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped is not None:
        return found.ipv4_mapped
    return found


def address_kind(address: IPAddress) -> str | None:
    """Why ``address`` is not public (``"loopback"``, ``"private"``...); ``None`` if it is."""
    checks = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("unspecified", address.is_unspecified),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    )
    for kind, matches in checks:
        if matches:
            return kind
    return None if address.is_global else "non-public"


@dataclass(frozen=True, slots=True)
class AllowEntry:
    """One allow-list entry: a host name or a network, and optionally a port.

    Attributes:
        text: The entry as written.
        host: A host name (lower case), or ``None`` for a network entry.
        network: The addresses allowed (one address is a /32 or /128).
        port: The only port allowed, or ``None`` for any.
    """

    text: str
    host: str | None = None
    network: IPNetwork | None = None
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> AllowEntry:
        """``host``, ``host:port``, ``address``, ``[v6]:port``, ``cidr`` or ``cidr:port``.

        Raises:
            InvalidArgument: The entry is none of these.
        """
        entry = text.strip()
        if "://" in entry:
            raise InvalidArgument(
                f"{text!r} is a URL: give its host and port (such as '127.0.0.1:9000')",
                argument="allow-egress",
            )
        body, port = _split_port(entry)
        try:
            network = ipaddress.ip_network(body.strip("[]"), strict=False)
        except ValueError:
            network = None
        if network is not None:
            return cls(entry, network=_unmapped(network), port=port)
        host = body.lower().rstrip(".")
        labels = host.split(".")
        if not host or not all(
            label and len(label) < 64 and label.replace("-", "").replace("_", "").isalnum()
            for label in labels
        ):
            raise InvalidArgument(
                f"{text!r} is not a host, address or network (such as 'api.example.com', "
                "'127.0.0.1:9000' or '10.0.0.0/8')",
                argument="allow-egress",
            )
        return cls(entry, host=host, port=port)

    def allows_host(self, host: str, port: int) -> bool:
        """Whether this is a host name entry for ``host`` (and ``port``, if it names one)."""
        return self.host is not None and self.host == _host_key(host) and self._port_ok(port)

    def allows_address(self, address: IPAddress, port: int) -> bool:
        """Whether this is a network entry holding ``address`` (and ``port``, if it names one)."""
        return (
            self.network is not None
            and address.version == self.network.version
            and address in self.network
            and self._port_ok(port)
        )

    def _port_ok(self, port: int) -> bool:
        return self.port is None or self.port == port


def _split_port(entry: str) -> tuple[str, int | None]:
    """``entry`` without its ``:port``, and the port (IPv6 needs brackets for one)."""
    if entry.startswith("["):
        inside, _, rest = entry[1:].partition("]")
        return inside, _port(rest.removeprefix(":"), entry) if rest else None
    if entry.count(":") == 1:
        body, _, port = entry.partition(":")
        return body, _port(port, entry)
    return entry, None


def _port(text: str, entry: str) -> int:
    if text.isdigit() and 0 < int(text) < 65536:
        return int(text)
    raise InvalidArgument(f"{entry!r}: {text!r} is not a port", argument="allow-egress")


def _unmapped(network: IPNetwork) -> IPNetwork:
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
    return network


def _host_key(host: str) -> str:
    return host.lower().rstrip(".").strip("[]")


@dataclass(frozen=True, slots=True, kw_only=True)
class EgressPolicy:
    """Which outbound connections and local documents are allowed (see the module docs).

    Attributes:
        allow: The allow list (non-public addresses and names it permits).
        folders: Folders (resolved) whose files may be read as documents.
        allow_all: Allow everything (``tideflow run``; clients made without a policy).
    """

    allow: tuple[AllowEntry, ...] = ()
    folders: tuple[Path, ...] = ()
    allow_all: bool = False

    @classmethod
    def everything(cls) -> EgressPolicy:
        """The policy of ``tideflow run``: any address, any local file."""
        return cls(allow_all=True)

    @classmethod
    def for_server(cls, allow: Iterable[str] = (), folders: Iterable[Path] = ()) -> EgressPolicy:
        """A server's policy: public addresses, the allow list, files in ``folders``.

        Raises:
            InvalidArgument: An allow-list entry does not parse.
        """
        entries = tuple(AllowEntry.parse(a) for a in dict.fromkeys(allow) if a.strip())
        return cls(allow=entries, folders=tuple(Path(f).resolve() for f in folders))

    def refusal(self, host: str, port: int, addresses: Sequence[str]) -> str | None:
        """Why connecting to ``host:port``, resolved to ``addresses``, is refused; else ``None``.

        Every address is checked: a name that resolves to a public and a
        private address is refused (the connection could go to either).
        """
        if self.allow_all or any(e.allows_host(host, port) for e in self.allow):
            return None
        if not addresses:
            return f"{host} resolved to no address"
        for text in addresses:
            address = _address(text)
            if address is None:
                return f"{host} resolved to {text!r}, which is not an IP address"
            kind = address_kind(address)
            if kind is not None and not any(e.allows_address(address, port) for e in self.allow):
                named = host if _host_key(host) == str(address) else f"{host} ({address})"
                return (
                    f"the egress policy refuses {named} port {port} ({kind} address); "
                    f"allow it with {ALLOW_HINT} (such as {_suggestion(address, port)})"
                )
        return None

    def check(self, host: str, port: int, addresses: Sequence[str]) -> None:
        """Raise :class:`~tideflow.errors.EgressDenied` if :meth:`refusal` refuses.

        Raises:
            EgressDenied: The connection is not allowed.
        """
        reason = self.refusal(host, port, addresses)
        if reason is not None:
            raise EgressDenied(reason)

    def literal_refusal(self, url: str) -> str | None:
        """:meth:`refusal` for a URL whose host is an IP address; ``None`` for names.

        For clients that do not resolve IP literals through the policy's
        resolver (names are checked when they are resolved).
        """
        parts = urlsplit(url)
        host = parts.hostname or ""
        if _address(host) is None:
            return None
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return f"{url!r} has an invalid port"
        return self.refusal(host, port, [host])

    def file_refusal(self, path: Path) -> str | None:
        """Why the local document ``path`` (absolute) may not be read; ``None`` if it may.

        Nothing is read or even looked at: the answer depends on the path
        alone, so a refusal says nothing about whether the file exists.
        """
        if self.allow_all:
            return None
        found = path.resolve()
        if any(found.is_relative_to(folder) for folder in self.folders):
            return None
        return (
            "the egress policy refuses local documents outside the server's --workflows "
            "folders; serve the document over http(s) or inline it"
        )


def _suggestion(address: IPAddress, port: int) -> str:
    shown = f"[{address}]" if address.version == 6 else str(address)
    return f"{shown}:{port}"
