"""Where the operator's secrets live: ``TIDEFLOW_SECRET_*`` variables and the secrets file.

A :class:`SecretSource` answers "the value of secret NAME" for every user of
secrets: ``$SECRETS`` of a workflow (only the names granted to it, see
:mod:`tideflow.secrets.grants`) and the ``{"secret": NAME}`` references of
stored configuration (:mod:`tideflow.secrets.refs`). The file
(``TIDEFLOW_SECRETS_FILE``) is read at each look-up of a batch of names, so a
changed file needs no restart; the environment wins over it (the lookup order
is :func:`tideflow.workflow.secrets.load_secrets`'s).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tideflow.errors import SecretUnavailable
from tideflow.workflow.secrets import load_secrets, secret_env_names

__all__ = ["SecretSource"]


@dataclass(frozen=True, slots=True)
class SecretSource:
    """The operator's secrets.

    Attributes:
        env: Where ``TIDEFLOW_SECRET_<NAME>`` variables are read.
        file: The secrets file (JSON, or YAML for any other extension), if any.
    """

    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    file: Path | None = None

    def values(self, names: Iterable[str]) -> dict[str, Any]:
        """``{name: value}`` of ``names`` that are set (the others are left out).

        Raises:
            ConfigurationError: The secrets file cannot be read.
        """
        return load_secrets(names, self.env, self.file, strict=False)

    def value(self, name: str) -> Any:
        """The value of secret ``name``.

        Raises:
            SecretUnavailable: It is set nowhere.
            ConfigurationError: The secrets file cannot be read.
        """
        found = self.values([name])
        if name not in found:
            where = " or the secrets file" if self.file is not None else ""
            raise SecretUnavailable(
                f"secret {name!r} is not set: set {secret_env_names(name)[-1]}{where}",
                name=name,
            )
        return found[name]
