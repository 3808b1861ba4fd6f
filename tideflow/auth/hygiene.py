"""Request hygiene that makes cross-site requests useless (pure checks, no I/O).

A web page the user visits can make the browser send requests to a server on
``127.0.0.1`` -- but only "simple" ones: no ``Authorization`` header, and a
body typed ``text/plain``, form-encoded or multipart (anything else needs a
CORS pre-flight, which Tideflow never grants). So Tideflow:

* takes tokens from the ``Authorization`` header only, never from a cookie;
* refuses a state-changing request whose body has no content type or one of
  the three "simple" types (``415``), unless it carries ``ce-specversion``
  (the CloudEvents binary mode, whose ``Content-Type`` is the data's: that
  header alone needs a pre-flight);
* refuses a ``Host`` that is not one of the server's names (``421``): a DNS
  rebinding page reaches the port under its own name;
* refuses an ``Origin`` other than the server's own (``403``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

from tideflow.errors import MisdirectedRequest, PermissionDenied, UnsupportedMediaType

LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS: Final = frozenset({"", "0.0.0.0", "::"})
STATE_CHANGING: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SIMPLE_TYPES: Final = frozenset(
    {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"}
)


def is_loopback(host: str) -> bool:
    """Whether a listening address only accepts connections from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def server_names(bind: str, configured: Iterable[str] = ()) -> frozenset[str] | None:
    """The ``Host`` names a server listening on ``bind`` answers to (``None``: any).

    On loopback: ``localhost``, ``127.0.0.1`` and ``::1``. On a wildcard
    address (``0.0.0.0``, ``::``): the configured names and the loopback
    ones, or any name when none is configured (the token is then the only
    guard). On another address: that address and the configured names.
    """
    names = {host_name(name) for name in configured if name.strip()}
    if is_loopback(bind):
        return frozenset(names | LOOPBACK_NAMES)
    if bind in WILDCARDS:
        return frozenset(names | LOOPBACK_NAMES) if names else None
    return frozenset(names | {host_name(bind)})


def host_name(header: str) -> str:
    """The name of a ``Host`` header value: no port, no IPv6 brackets, lower case."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    name, _, port = value.rpartition(":")
    if name and port.isdigit():
        value = name
    return value.rstrip(".")


def check_host(header: str | None, names: frozenset[str] | None) -> None:
    """Refuse a ``Host`` that is not one of ``names``.

    Raises:
        MisdirectedRequest: It is missing or foreign.
    """
    if names is None:
        return
    if header is None or host_name(header) not in names:
        shown = repr(header) if header is not None else "no Host header"
        raise MisdirectedRequest(
            f"{shown} is not a name of this server; allowed: {', '.join(sorted(names))} "
            "(more with --allow-host or TIDEFLOW_ALLOWED_HOSTS)"
        )


def check_origin(origin: str | None, host: str | None) -> None:
    """Refuse an ``Origin`` that is not this server's own (``scheme://`` + ``Host``).

    Raises:
        PermissionDenied: The origin is another site's, or ``null``.
    """
    if origin is None:
        return
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or host is None:
        raise PermissionDenied(f"requests from origin {origin!r} are not accepted")
    if parts.netloc.lower() != host.strip().lower():
        raise PermissionDenied(f"requests from origin {origin!r} are not accepted here")


def media_type(header: str | None) -> str:
    """The bare media type of a ``Content-Type`` header, lower case (``""`` if none)."""
    return (header or "").split(";", 1)[0].strip().lower()


def check_content_type(
    method: str, content_type: str | None, *, has_body: bool, binary_event: bool = False
) -> None:
    """Refuse a state-changing body a web page could send without a pre-flight.

    Raises:
        UnsupportedMediaType: It has no content type, or a "simple" one.
    """
    if method not in STATE_CHANGING or not has_body or binary_event:
        return
    media = media_type(content_type)
    if not media:
        raise UnsupportedMediaType("the request body needs a Content-Type header")
    if media in SIMPLE_TYPES:
        raise UnsupportedMediaType(
            f"{media} bodies are not accepted: send application/json (or the type the "
            "route documents)"
        )
