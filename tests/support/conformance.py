"""The conformance corpus: ``../shared/conformance``, a sibling of the checkout (never copied in).

Every test that reads the corpus skips through this module when its part is
absent, with a reason that starts with :data:`ABSENT`. ``tests/conftest.py``
gathers those skips into one line of the terminal summary, and under
``CI=true`` fails the session: CI must run every case.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE = ROOT / ".." / "shared" / "conformance"
SW08_EXAMPLES = CONFORMANCE / "sw-0.8" / "examples"
CLOUDEVENTS = CONFORMANCE / "cloudevents"
ABSENT = "conformance corpus absent"
"""How every skip for a missing part of the corpus starts (the conftest counts them)."""


def absent(path: Path) -> str:
    """The skip reason for ``path``, a part of the corpus that is not there."""
    return f"{ABSENT}: {os.path.relpath(path, ROOT)}"


def needs(path: Path) -> pytest.MarkDecorator:
    """Mark tests (or a module, as ``pytestmark``) that read ``path``."""
    return pytest.mark.skipif(not path.exists(), reason=absent(path))


def skip_unless(path: Path) -> None:
    """Skip the running test when ``path`` is absent."""
    if not path.exists():
        pytest.skip(absent(path))
