"""The one pattern a deployed workflow's id must match.

Letters, digits, ``.``, ``_`` and ``-``, 1 to 127 characters, starting with a
letter or digit: both 0.8 ids (``order-flow``) and 1.0 ``{namespace}.{name}``
ids fit, and an id is always one safe URL path segment (no ``/``, no control
characters, nothing to escape).
"""

from __future__ import annotations

import re
from typing import Final

WORKFLOW_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,126}$"
_WORKFLOW_ID: Final = re.compile(WORKFLOW_ID_PATTERN)


def workflow_id_problem(workflow_id: str) -> str | None:
    """Why ``workflow_id`` cannot be deployed, or ``None`` if it can."""
    if _WORKFLOW_ID.fullmatch(workflow_id):
        return None
    return (
        f"invalid workflow id {workflow_id!r}: use 1-127 letters, digits, '.', '_' or '-', "
        "starting with a letter or digit"
    )
