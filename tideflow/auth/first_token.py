"""The first admin token of a fresh installation, and the file that keeps it.

On the first start of a server whose database has no token at all, one admin
token is made, printed once, and saved to ``$TIDEFLOW_HOME/admin-token``
(mode ``0600``: readable by its owner only). The CLI reads that file when it
talks to a server on this machine and has no ``--token``/``TIDEFLOW_TOKEN``,
so ``tideflow serve`` and the CLI work together with no set-up. Servers
starting at once on one database agree on a single first token.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Final

from tideflow.auth.scopes import ADMIN
from tideflow.auth.tokens import issue
from tideflow.auth.verifier import TokenStore
from tideflow.clock import SYSTEM_CLOCK, Clock

TOKEN_FILE: Final = "admin-token"
FIRST_TOKEN_NAME: Final = "first admin token"


def token_file(home: Path) -> Path:
    """Where the first admin token is saved under ``home``."""
    return home / TOKEN_FILE


def read_token_file(home: Path) -> str | None:
    """The saved token, or ``None`` when there is no readable file."""
    try:
        text = token_file(home).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text or None


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable and writable by its owner only (``0600``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)  # the file may have existed with a wider mode
        out.write(text + "\n")


async def ensure_first_token(
    store: TokenStore, home: Path, clock: Clock = SYSTEM_CLOCK
) -> str | None:
    """Make the first admin token if there is no token at all.

    The file is written before the token is stored (and renamed into place
    after), so a stored first token is never one nobody can know.

    Returns:
        The new token's text (print it once), or ``None`` if tokens existed.
    """
    issued = issue(FIRST_TOKEN_NAME, [ADMIN], clock.now())
    target = token_file(home)
    pending = target.with_name(f".{TOKEN_FILE}.{issued.record.id}")
    write_private(pending, issued.text)
    try:
        created = await store.create_first(issued.record)
    except BaseException:
        pending.unlink(missing_ok=True)
        raise
    if not created:
        pending.unlink(missing_ok=True)
        return None
    with contextlib.suppress(OSError):  # the token is printed too: never lose the start
        pending.replace(target)
    return issued.text
