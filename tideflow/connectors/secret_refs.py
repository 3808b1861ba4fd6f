"""Resolving a connector's secret references (``{"secret": "NAME"}`` config values).

Only the reference is stored; the value is looked up each time the connector
starts, through :func:`resolve_secret` -- the one place that knows where secrets
live (today the ``$SECRETS`` sources of :mod:`tideflow.workflow.secrets`: a
``TIDEFLOW_SECRET_<NAME>`` variable or the secrets file).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tideflow.connectors.spec import is_secret_reference
from tideflow.workflow.secrets import load_secrets


def resolve_secret(name: str, secrets_file: Path | None) -> Any:
    """The value of secret ``name``.

    Raises:
        ConfigurationError: It is found nowhere (the message names it, never a value).
    """
    return load_secrets([name], os.environ, secrets_file)[name]


def resolve_config(config: Mapping[str, Any], secrets_file: Path | None) -> dict[str, Any]:
    """``config`` with every secret reference replaced by its value.

    Raises:
        ConfigurationError: A referenced secret is found nowhere.
    """
    return {
        key: resolve_secret(value["secret"], secrets_file) if is_secret_reference(value) else value
        for key, value in config.items()
    }
