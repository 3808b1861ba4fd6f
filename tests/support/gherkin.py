"""A small Gherkin reader: features, scenarios, steps with their doc strings.

Enough for the Serverless Workflow CTK: ``Feature``, ``Scenario``, steps
(``Given``/``When``/``Then``/``And``/``But``), ``\"\"\"`` doc strings (an
optional content type after the quotes) and ``#`` comments. Scenario
outlines and tables are refused, so a new CTK feature cannot pass by being
half read.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

KEYWORDS = ("Given", "When", "Then", "And", "But")


@dataclass
class GherkinStep:
    """One step: its keyword, its text and its doc string (if any)."""

    keyword: str
    text: str
    line: int
    doc: str | None = None


@dataclass
class Scenario:
    """One scenario of a feature."""

    feature: str
    name: str
    path: Path
    line: int
    steps: list[GherkinStep] = field(default_factory=list)

    @property
    def ident(self) -> str:
        """``feature-file: scenario name`` (the test id)."""
        return f"{self.path.stem}: {self.name}"


def _doc_string(lines: list[str], start: int) -> tuple[str, int]:
    """The doc string opening at ``lines[start]``; return it and the index after it."""
    opening = lines[start]
    indent = len(opening) - len(opening.lstrip())
    body: list[str] = []
    index = start + 1
    while index < len(lines) and lines[index].strip() != '"""':
        body.append(lines[index][indent:] if lines[index].strip() else "")
        index += 1
    if index == len(lines):
        raise ValueError(f"line {start + 1}: unclosed doc string")
    return textwrap.dedent("\n".join(body)) + "\n", index + 1


def parse_feature(path: Path) -> list[Scenario]:
    """The scenarios of one ``.feature`` file.

    Raises:
        ValueError: Something this reader does not understand, with its line.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    feature, scenarios = "", []
    index = 0
    while index < len(lines):
        text = lines[index].strip()
        number = index + 1
        index += 1
        if not text or text.startswith("#"):
            continue
        if text.startswith("Feature:"):
            feature = text.removeprefix("Feature:").strip()
        elif text.startswith(("Scenario Outline:", "Examples:", "|", "Background:", "@")):
            raise ValueError(f"{path.name}:{number}: not supported by this reader: {text}")
        elif text.startswith("Scenario:"):
            name = text.removeprefix("Scenario:").strip()
            scenarios.append(Scenario(feature, name, path, number))
        elif text.split(" ", 1)[0] in KEYWORDS and scenarios:
            keyword, _, rest = text.partition(" ")
            step = GherkinStep(keyword, rest.strip(), number)
            if index < len(lines) and lines[index].strip().startswith('"""'):
                step.doc, index = _doc_string(lines, index)
            scenarios[-1].steps.append(step)
        elif not scenarios:
            continue  # the feature's description ("As an implementer ...")
        else:
            raise ValueError(f"{path.name}:{number}: not a step: {text}")
    return scenarios
