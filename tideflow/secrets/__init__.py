"""Secrets: the operator's values, who may receive them, and keeping them out of outputs.

- :mod:`~tideflow.secrets.source`: the values (``TIDEFLOW_SECRET_*``, ``TIDEFLOW_SECRETS_FILE``);
- :mod:`~tideflow.secrets.grants`: which workflow (or sink) may receive which secret;
- :mod:`~tideflow.secrets.access`: the values, each given only where granted;
- :mod:`~tideflow.secrets.refs`: ``{"secret": NAME}`` references in stored configuration;
- :mod:`~tideflow.secrets.redaction`: secret values replaced by ``***`` in what leaves a workflow;
- :mod:`~tideflow.secrets.sealed`: seals that stand for secrets in workflows on Temporal.

The rules and their limits are documented in ``docs/security.md`` ("Secrets").
"""

from __future__ import annotations

from tideflow.secrets.access import GrantStore, SecretAccess
from tideflow.secrets.grants import ALL, Grant, make_grant, parse_grant, parse_grants, refused
from tideflow.secrets.redaction import MASK, NO_REDACTION, Redactor
from tideflow.secrets.refs import is_secret_ref, ref_names, resolve_refs, secret_ref
from tideflow.secrets.sealed import (
    SecretRead,
    refused_reads,
    seal,
    sealed_names,
    sealed_secrets,
    unseal,
)
from tideflow.secrets.source import SecretSource

__all__ = [
    "ALL",
    "MASK",
    "NO_REDACTION",
    "Grant",
    "GrantStore",
    "Redactor",
    "SecretAccess",
    "SecretRead",
    "SecretSource",
    "is_secret_ref",
    "make_grant",
    "parse_grant",
    "parse_grants",
    "ref_names",
    "refused",
    "refused_reads",
    "resolve_refs",
    "seal",
    "sealed_names",
    "sealed_secrets",
    "secret_ref",
    "unseal",
]
