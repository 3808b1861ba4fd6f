"""The webhook source: ``POST /hooks/{name}`` with any JSON body becomes an event (pure).

``config``: ``signature`` (``github``, ``stripe``, ``hmac-sha256``; absent: the
request needs an API token with ``publish:<bus>`` instead), ``secret`` (the HMAC
key, best a ``{"secret": NAME}`` reference; required with ``signature``), ``header``
(the signature header of ``hmac-sha256``, default ``X-Signature``), ``idHeader``
(the header holding the delivery's id), ``tolerance`` (seconds a Stripe timestamp may
be old, default 300).

- ``github``: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``; the
  record id is ``X-GitHub-Delivery``.
- ``stripe``: ``Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">``
  (several ``v1`` accepted, the timestamp within ``tolerance``); the record id is the
  body's ``id`` (``evt_...``).
- ``hmac-sha256``: ``<header>: <hex>`` or ``sha256=<hex>`` of the body.

Signatures are compared in constant time. A redelivered hook with the same id dedups
to the same event; without an id it is a new event each time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from tideflow.errors import AuthenticationRequired, InvalidArgument

SCHEMES: Final = ("github", "stripe", "hmac-sha256")
DEFAULT_TOLERANCE: Final = 300.0
_HIDDEN: Final = frozenset(
    {"authorization", "cookie", "x-hub-signature", "x-hub-signature-256", "stripe-signature"}
)


def _digest(key: str, message: bytes) -> str:
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class HookCheck:
    """How one webhook connector checks and identifies its requests."""

    scheme: str | None
    """``github``, ``stripe``, ``hmac-sha256`` or ``None`` (a bearer token instead)."""
    key: str = ""
    """The HMAC key (resolved)."""
    header: str = "x-signature"
    """The signature header of ``hmac-sha256`` (lower case)."""
    id_header: str | None = None
    """The header holding the delivery's id (lower case)."""
    tolerance: float = DEFAULT_TOLERANCE
    """Seconds a Stripe timestamp may be away from now."""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> HookCheck:
        """From a resolved ``config``.

        Raises:
            InvalidArgument: An unknown scheme, or a scheme without a ``secret``.
        """
        scheme = config.get("signature")
        if scheme is not None and scheme not in SCHEMES:
            raise InvalidArgument(
                f"config.signature must be one of {', '.join(SCHEMES)}, got {str(scheme)[:40]!r}",
                argument="config.signature",
            )
        key = config.get("secret")
        if scheme is not None and (not isinstance(key, str) or not key):
            raise InvalidArgument(
                "config.secret (the HMAC key, a text) is required with config.signature",
                argument="config.secret",
            )
        id_header = config.get("idHeader") or {"github": "x-github-delivery"}.get(str(scheme))
        return cls(
            scheme=scheme,
            key=str(key or ""),
            header=str(config.get("header") or "x-signature").lower(),
            id_header=None if id_header is None else str(id_header).lower(),
            tolerance=float(config.get("tolerance", DEFAULT_TOLERANCE)),
        )

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        """Check the request's signature (nothing to check without a scheme).

        Args:
            headers: The request's headers, names in lower case.
            body: The raw body, as signed.
            now: Unix time, for Stripe's timestamp.

        Raises:
            AuthenticationRequired: The signature is missing, malformed, stale or wrong.
        """
        if self.scheme == "github":
            self._hex(headers.get("x-hub-signature-256"), "X-Hub-Signature-256", body, "sha256=")
        elif self.scheme == "hmac-sha256":
            self._hex(headers.get(self.header), self.header, body, "sha256=")
        elif self.scheme == "stripe":
            self._stripe(headers.get("stripe-signature"), body, now)

    def _hex(self, value: str | None, name: str, body: bytes, prefix: str) -> None:
        if not value:
            raise AuthenticationRequired(f"the webhook's signature header {name} is missing")
        given = value.strip().removeprefix(prefix)
        if not hmac.compare_digest(given.encode(), _digest(self.key, body).encode()):
            raise AuthenticationRequired(f"the webhook's signature ({name}) does not match")

    def _stripe(self, value: str | None, body: bytes, now: float) -> None:
        if not value:
            raise AuthenticationRequired(
                "the webhook's signature header Stripe-Signature is missing"
            )
        parts = [p.partition("=") for p in value.split(",")]
        stamps = [v for k, _, v in parts if k.strip() == "t"]
        signatures = [v.strip() for k, _, v in parts if k.strip() == "v1"]
        if len(stamps) != 1 or not stamps[0].strip().isdigit() or not signatures:
            raise AuthenticationRequired("Stripe-Signature must hold t=<unix time> and v1=<hex>")
        stamp = stamps[0].strip()
        if abs(now - int(stamp)) > self.tolerance:
            raise AuthenticationRequired(
                f"Stripe-Signature's timestamp is more than {self.tolerance:g} s from now"
            )
        expected = _digest(self.key, stamp.encode() + b"." + body).encode()
        if not any(hmac.compare_digest(s.encode(), expected) for s in signatures):
            raise AuthenticationRequired(
                "the webhook's signature (Stripe-Signature) does not match"
            )

    def record_id(self, headers: Mapping[str, str], body: Any) -> str | None:
        """The delivery's own id: the id header, or a Stripe event's ``id``."""
        if self.id_header is not None and headers.get(self.id_header):
            return headers[self.id_header]
        if self.scheme == "stripe" and isinstance(body, dict) and isinstance(body.get("id"), str):
            return str(body["id"])
        return None


def visible_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers a mapping sees: credentials and signatures left out."""
    return {k: v for k, v in headers.items() if k not in _HIDDEN}
