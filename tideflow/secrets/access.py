"""The server's secrets: values from the operator's source, given only where granted.

:class:`SecretAccess` is what the rest of Tideflow asks: deploy asks which
declared secrets a workflow id is refused (a ``422`` naming them), the durable
host asks for the values of the granted ones (``$SECRETS``), and stored
configuration with ``{"secret": NAME}`` references (subscription sinks,
connectors) has them resolved for its subject (:meth:`SecretAccess.resolve`).

Grants are the fixed ones of the server's settings (``--grant-secret``,
``TIDEFLOW_SECRET_GRANTS``) plus those stored by the admin API, read at each
question (a deploy, a version's first load, a sink's start), so a change
through the API reaches every server on the database without a restart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from tideflow.errors import SecretUnavailable
from tideflow.secrets.grants import ALL, Grant, refused
from tideflow.secrets.refs import ref_names, resolve_refs
from tideflow.secrets.source import SecretSource

__all__ = ["GrantStore", "SecretAccess"]


class GrantStore(Protocol):
    """Grants stored by the admin API (:class:`tideflow.secrets.gateway.PostgresGrants`)."""

    async def list(self) -> list[Grant]:
        """Every stored grant."""


class SecretAccess:
    """The operator's secrets, each given only to the subjects granted it.

    Args:
        source: Where the values are.
        grants: The fixed grants (server settings).
        store: Grants stored through the admin API, if any.
    """

    def __init__(
        self,
        source: SecretSource,
        grants: Sequence[Grant] = (),
        store: GrantStore | None = None,
    ) -> None:
        self.source = source
        self.fixed = tuple(grants)
        self.store = store

    @classmethod
    def local(cls, source: SecretSource | None = None) -> SecretAccess:
        """Every secret granted to everything: ``tideflow run``, where the user is the operator."""
        return cls(source or SecretSource(), (ALL,))

    async def grants(self) -> tuple[Grant, ...]:
        """The fixed grants, then the stored ones.

        Raises:
            StoreError: The stored grants cannot be read.
        """
        stored = await self.store.list() if self.store is not None else []
        return (*self.fixed, *stored)

    async def refused(self, subject: str, names: Iterable[str]) -> list[str]:
        """The names among ``names`` no grant lets ``subject`` receive, in order."""
        names = list(names)
        if not names:
            return []
        return refused(await self.grants(), subject, names)

    async def values(self, subject: str, names: Iterable[str]) -> dict[str, Any]:
        """``{name: value}`` of ``names`` granted to ``subject`` and set (others left out).

        Raises:
            ConfigurationError: The secrets file cannot be read.
        """
        names = list(names)
        if not names:
            return {}
        denied = set(refused(await self.grants(), subject, names))
        return self.source.values(name for name in names if name not in denied)

    async def resolve(self, subject: str, value: Any) -> Any:
        """``value`` with its ``{"secret": NAME}`` references replaced by the values.

        Raises:
            SecretUnavailable: A referenced secret is not granted to ``subject``
                or not set (the error names it, never a value).
        """
        names = ref_names(value)
        if not names:
            return value
        if denied := await self.refused(subject, names):
            raise SecretUnavailable(
                f"secret {denied[0]!r} is not granted to {subject!r}", name=denied[0]
            )
        found = self.source.values(names)
        for name in names:
            if name not in found:
                self.source.value(name)  # raises, naming where to set it
        return resolve_refs(value, found.__getitem__)
