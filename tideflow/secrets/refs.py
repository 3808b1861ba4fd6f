"""Secret references: ``{"secret": "NAME"}`` stored in configuration instead of a value.

Configuration that needs a credential -- a subscription sink's headers, a
connector's settings -- holds a *reference* to one of the operator's secrets
(``TIDEFLOW_SECRET_<NAME>`` or the secrets file, :mod:`tideflow.secrets.source`)
rather than the value. The reference is what is stored in the database and
shown by the API; the value is looked up only where it is used, at the moment
it is used (:func:`resolve_refs`), so nothing in a database dump or an API
answer reveals it.

A reference is a JSON object with exactly one member, ``secret``, whose value
is the secret's name. Pure code: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from tideflow.errors import InvalidArgument

__all__ = ["REF_KEY", "is_secret_ref", "ref_names", "resolve_refs", "secret_ref"]

REF_KEY: Final = "secret"
"""The one member of a secret reference."""
SECRET_NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
"""What a secret's name may be: letters, digits, ``_``, ``.``, ``-``; at most 128."""


def secret_ref(name: str) -> dict[str, str]:
    """The reference to secret ``name``: ``{"secret": name}``."""
    return {REF_KEY: name}


def is_secret_ref(value: Any) -> bool:
    """Whether ``value`` is a reference (an object whose only member is ``secret``)."""
    return isinstance(value, Mapping) and len(value) == 1 and REF_KEY in value


def ref_names(value: Any, where: str = "") -> tuple[str, ...]:
    """The secret names referenced anywhere in ``value``, each once, in order.

    Args:
        value: A JSON value (objects, arrays, scalars).
        where: How to name ``value`` in errors (``headers``, ``config``).

    Raises:
        InvalidArgument: A reference's name is not a string or not a valid
            name (``argument`` is the reference's path).
    """
    return tuple(dict.fromkeys(name for name, _ in _refs(value, where)))


def _refs(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if is_secret_ref(value):
        name = value[REF_KEY]
        if not isinstance(name, str) or SECRET_NAME.fullmatch(name) is None:
            raise InvalidArgument(
                f"{path or 'a secret reference'}: a secret reference is "
                '{"secret": NAME}, NAME made of letters, digits, "_", "." and "-"',
                argument=path or None,
            )
        yield name, path
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _refs(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _refs(item, f"{path}[{index}]")


def resolve_refs(value: Any, lookup: Callable[[str], Any]) -> Any:
    """``value`` with every reference replaced by ``lookup(name)``.

    Args:
        value: A JSON value holding references anywhere.
        lookup: The secret's value by name; it raises when there is none
            (e.g. :meth:`tideflow.secrets.source.SecretSource.value`).
    """
    if is_secret_ref(value):
        return lookup(value[REF_KEY])
    if isinstance(value, Mapping):
        return {key: resolve_refs(item, lookup) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [resolve_refs(item, lookup) for item in value]
    return value
