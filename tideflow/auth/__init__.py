"""Authentication and authorization: API tokens, scopes, request hygiene.

Pure parts: :mod:`~tideflow.auth.scopes` (what a token may do),
:mod:`~tideflow.auth.tokens` (their text and stored form),
:mod:`~tideflow.auth.hygiene` (Host, Origin and content-type checks).
With I/O: :class:`~tideflow.auth.verifier.TokenVerifier` (cached look-ups),
:class:`~tideflow.auth.gateway.PostgresTokens` and
:mod:`~tideflow.auth.first_token` (the first admin token and its file),
:class:`~tideflow.auth.audit.AuditTrail` (who changed what, on ``tideflow.audit``).
"""

from __future__ import annotations

from tideflow.auth.audit import AuditTrail
from tideflow.auth.scopes import ADMIN, AUDIT_BUS, DEPLOY, PUBLISH, READ, RUN, SUBSCRIBE, grants
from tideflow.auth.tokens import INSECURE_LOCAL, Issued, Principal, TokenRecord, issue
from tideflow.auth.verifier import TokenStore, TokenVerifier

__all__ = [
    "ADMIN",
    "AUDIT_BUS",
    "DEPLOY",
    "INSECURE_LOCAL",
    "PUBLISH",
    "READ",
    "RUN",
    "SUBSCRIBE",
    "AuditTrail",
    "Issued",
    "Principal",
    "TokenRecord",
    "TokenStore",
    "TokenVerifier",
    "grants",
    "issue",
]
