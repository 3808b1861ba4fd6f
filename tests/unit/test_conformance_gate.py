"""Without ``../shared/conformance``: one summary line outside CI, a failed session in CI.

pytest runs in a subprocess on a copy of the checkout that has no ``shared``
beside it, on two modules that read the corpus (and test other things too).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.conformance import ROOT

SUBSET = ("tests/unit/test_validate_schema.py", "tests/unit/test_filters_dialects.py")
IGNORE = shutil.ignore_patterns(
    ".git", ".venv*", "__pycache__", "*.egg-info", ".pytest_cache", ".mypy_cache", ".ruff_cache"
)
LINE = re.compile(
    r"^conformance corpus: \.\./shared/conformance is absent: (\d+) tests in 2 files skipped"
)


@pytest.fixture(scope="module")
def bare_checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the checkout with no ``shared`` beside it."""
    repo = tmp_path_factory.mktemp("bare") / "tideflow"
    shutil.copytree(ROOT, repo, ignore=IGNORE)
    assert not (repo / ".." / "shared").exists()
    return repo


def _pytest(repo: Path, *, ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", *SUBSET],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_outside_ci_the_missing_corpus_is_one_summary_line(bare_checkout: Path) -> None:
    result = _pytest(bare_checkout, ci=False)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    [line] = [line for line in lines if "conformance" in line]  # no per-test skip lines
    found = LINE.match(line)
    assert found is not None, line
    skipped = int(found.group(1))
    assert skipped >= 2
    assert f"{skipped} skipped (no corpus)" in lines[-1]
    assert " passed" in lines[-1]  # the rest of both modules ran


def test_in_ci_the_missing_corpus_fails_the_session(bare_checkout: Path) -> None:
    result = _pytest(bare_checkout, ci=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED: CI=true needs the conformance corpus; ../shared/conformance is absent" in (
        result.stdout
    )
    assert " failed" not in result.stdout.splitlines()[-1]  # no test failed: the corpus is absent
