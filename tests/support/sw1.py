"""The DSL 1.0 conformance corpus (``../shared/conformance/sw-1.0``), when present."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.support.conformance import CONFORMANCE, needs

SW1 = CONFORMANCE / "sw-1.0"
EXAMPLES = SW1 / "examples"
FEATURES = SW1 / "ctk" / "features"
SCHEMA = SW1 / "schema" / "workflow.yaml"

needs_sw1 = needs(SW1)


def example_files() -> list[Path]:
    """The example definitions, sorted (empty when the corpus is absent)."""
    return sorted(EXAMPLES.glob("*.yaml")) if EXAMPLES.is_dir() else []


_DEFINITION = re.compile(r'Given a workflow with definition:\n\s*"""yaml\n(.*?)"""', re.DOTALL)


def ctk_definitions() -> list[tuple[str, dict[str, Any]]]:
    """``(feature:line, document)`` of every workflow the CTK defines."""
    out = []
    for feature in sorted(FEATURES.glob("*.feature")) if FEATURES.is_dir() else []:
        text = feature.read_text(encoding="utf-8")
        for match in _DEFINITION.finditer(text):
            line = text[: match.start()].count("\n") + 1
            out.append((f"{feature.stem}:{line}", yaml.safe_load(match.group(1))))
    return out
