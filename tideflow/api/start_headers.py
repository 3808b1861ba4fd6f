"""What a start request's HTTP headers leave for ``$WORKFLOW.headers`` (pure, no I/O).

SonataFlow exposes the headers of the request that started an instance to jq as
``$WORKFLOW.headers`` (``KogitoProcessContextResolver``: one string per header,
the values of a repeated header concatenated without a separator). Tideflow keeps
them for instances started over HTTP (``POST /workflows/{id}/instances`` and its
``:batch``), stored with the instance so a replay sees the same ones, with:

- names lower-cased, values decoded as Latin-1 (what HTTP allows);
- credentials left out: ``Authorization``, ``Proxy-Authorization``, ``Cookie``,
  ``Set-Cookie``, CSRF headers, and any name containing ``token``, ``secret``,
  ``key``, ``password``, ``csrf``, ``xsrf``, ``auth`` or ``session``;
- at most :data:`MAX_HEADERS` headers and :data:`MAX_BYTES` bytes of names and
  values together, in the order the request sent them: from the first that would
  pass either limit on, the rest is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["MAX_BYTES", "MAX_HEADERS", "kept_headers"]

MAX_HEADERS = 64
"""Most headers kept."""
MAX_BYTES = 8 * 1024
"""Most bytes of names and values kept, all together."""

_SECRET_NAMES = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_SECRET_PARTS = ("token", "secret", "key", "password", "csrf", "xsrf", "auth", "session")


def secret(name: str) -> bool:
    """Whether a (lower-case) header name may carry a credential."""
    return name in _SECRET_NAMES or any(part in name for part in _SECRET_PARTS)


def kept_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The headers of an ASGI scope (``scope["headers"]``) that ``$WORKFLOW.headers`` shows."""
    joined: dict[str, str] = {}
    for raw_name, raw_value in raw:
        name = raw_name.decode("latin-1").lower()
        if secret(name):
            continue
        value = raw_value.decode("latin-1")
        joined[name] = joined.get(name, "") + value  # SonataFlow: Collectors.joining()
    kept: dict[str, str] = {}
    size = 0
    for name, value in joined.items():
        cost = len(name.encode("latin-1")) + len(value.encode("latin-1"))
        if len(kept) >= MAX_HEADERS or size + cost > MAX_BYTES:
            break
        kept[name] = value
        size += cost
    return kept
