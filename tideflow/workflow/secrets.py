"""Values for ``$SECRETS``: environment variables or a secrets file.

A workflow lists the secrets it needs (``secrets: [API_KEY, db.password]``).
Only those names are exposed to its expressions, never the whole environment
or the whole file. For a name, Tideflow looks in order at:

1. the environment variable ``TIDEFLOW_SECRET_<NAME>`` with the name as
   written, then upper-cased with every character other than a letter, digit
   or ``_`` replaced by ``_`` (``db.password`` -> ``TIDEFLOW_SECRET_DB_PASSWORD``);
   the value is the variable's text;
2. the top-level key ``<name>`` of the secrets file (JSON, or YAML for any
   other extension), whose value may be any JSON value.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from tideflow.errors import ConfigurationError

__all__ = ["SECRET_ENV_PREFIX", "load_secrets", "read_secrets_file", "secret_env_names"]

SECRET_ENV_PREFIX = "TIDEFLOW_SECRET_"
"""Environment variables with this prefix hold secrets."""

_NOT_IDENT = re.compile(r"[^A-Za-z0-9_]")


def secret_env_names(name: str) -> tuple[str, ...]:
    """The environment variables that may hold secret ``name``, in the order they are tried."""
    exact = f"{SECRET_ENV_PREFIX}{name}"
    normal = f"{SECRET_ENV_PREFIX}{_NOT_IDENT.sub('_', name).upper()}"
    return (exact,) if exact == normal else (exact, normal)


def read_secrets_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON (``.json``) or YAML (anything else) file holding one object of secrets.

    Raises:
        ConfigurationError: The file is missing, unreadable, does not parse,
            or does not hold an object.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read secrets file {file}: {exc.strerror}") from None
    try:
        content = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"secrets file {file}: invalid JSON at line {exc.lineno}: {exc.msg}"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigurationError(f"secrets file {file}: invalid YAML{where}") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigurationError(
            f"secrets file {file} must hold an object of name: value, not {type(content).__name__}"
        )
    return {str(key): value for key, value in content.items()}


def load_secrets(
    names: Iterable[str],
    env: Mapping[str, str] = os.environ,
    secrets_file: str | os.PathLike[str] | None = None,
    *,
    strict: bool = True,
) -> dict[str, Any]:
    """Collect the values of the secrets a workflow declares, for ``$SECRETS``.

    Args:
        names: The workflow's ``secrets`` list.
        env: Where ``TIDEFLOW_SECRET_<NAME>`` variables are read (the process
            environment unless given).
        secrets_file: Optional JSON/YAML file of ``name: value``; the
            environment wins over the file.
        strict: Raise when a declared secret is found nowhere; otherwise
            leave it out (``$SECRETS.name`` is then null).

    Returns:
        ``{name: value}`` for the declared names that were found.

    Raises:
        ConfigurationError: A secret is missing (with ``strict``), or the
            secrets file cannot be read.
    """
    from_file = read_secrets_file(secrets_file) if secrets_file is not None else {}
    found: dict[str, Any] = {}
    missing: list[str] = []
    for name in dict.fromkeys(names):
        value = next((env[var] for var in secret_env_names(name) if var in env), None)
        if value is not None:
            found[name] = value
        elif name in from_file:
            found[name] = from_file[name]
        else:
            missing.append(name)
    if missing and strict:
        where = " or the secrets file" if secrets_file is not None else ""
        hint = ", ".join(secret_env_names(missing[0])[-1:])
        raise ConfigurationError(
            f"secret(s) not found: {', '.join(missing)}; set {hint} "
            f"(one TIDEFLOW_SECRET_<NAME> variable per secret){where}"
        )
    return found
