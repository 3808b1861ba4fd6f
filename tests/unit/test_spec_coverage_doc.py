"""``docs/spec-coverage.md`` stays true: every checklist item once, every test real.

The page maps each item of ``../shared/conformance/sw-0.8/FEATURES.md`` to the
tests that cover it. This test re-reads the checklist, numbers its items the
way the page does (``N.k`` per section, ``I1``.. for the known
inconsistencies), and checks the page against it and against the test files.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tests.support.conformance import CONFORMANCE, needs

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "spec-coverage.md"
FEATURES = CONFORMANCE / "sw-0.8" / "FEATURES.md"

needs_checklist = needs(FEATURES)

REF = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)(?:\[([^\]]+)\])?`")
ROW = re.compile(r"^\|\s*\*\*(\S+)\*\*\s")


@dataclass(frozen=True)
class Row:
    """One table row of the page."""

    ident: str
    text: str
    covered: str
    notes: str
    line: int


def checklist(text: str) -> list[tuple[str, str]]:
    """The checklist's items as ``(ident, text)``, in order."""
    items: list[tuple[str, str]] = []
    section: int | None = None
    known = False
    counts: dict[int, int] = {}
    for line in text.splitlines():
        head = re.match(r"^## (\d+)\. ", line)
        if head:
            section, known = int(head.group(1)), False
            counts[section] = 0
            continue
        if line.startswith("## "):
            section, known = None, line.startswith("## Known spec/schema inconsistencies")
            continue
        if section is not None and line.startswith("- [ ] "):
            counts[section] += 1
            items.append((f"{section}.{counts[section]}", line[6:].strip()))
        numbered = re.match(r"^(\d+)\. (.*)$", line)
        if known and numbered:
            items.append((f"I{numbered.group(1)}", numbered.group(2).strip()))
    return items


def _cells(line: str) -> list[str]:
    parts = re.split(r"(?<!\\)\|", line.strip())
    return [p.strip().replace("\\|", "|") for p in parts[1:-1]]


def rows() -> list[Row]:
    """Every item row of the page."""
    found = []
    for number, line in enumerate(DOC.read_text(encoding="utf-8").splitlines(), 1):
        match = ROW.match(line)
        if not match:
            continue
        cells = _cells(line)
        assert len(cells) == 3, f"docs/spec-coverage.md:{number}: expected 3 cells"
        text = cells[0].removeprefix(f"**{match.group(1)}**").strip()
        found.append(Row(match.group(1), text, cells[1], cells[2], number))
    return found


@cache
def _functions(path: str) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    return {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def _marks(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    return [ast.unparse(d) for d in node.decorator_list]


def _is_strict_xfail(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any("xfail" in m and "strict=True" in m for m in _marks(node))


EXAMPLES = ROOT / "examples" / "workflows"
"""The shipped examples: tests parametrized by their names (``NAMES``) take these ids."""


def _param_id_exists(path: str, param: str) -> bool:
    source = (ROOT / path).read_text(encoding="utf-8")
    quoted = (f'"{param}"', f"'{param}'")
    if any(q in source for q in quoted):
        return True
    if '"examples" / "workflows"' in source and (EXAMPLES / f"{param}.yaml").is_file():
        return True
    return all(f'"{part}"' in source or f"'{part}'" in source for part in param.split("-"))


def check_reference(path: str, name: str, param: str | None, *, gap: bool) -> str | None:
    """What is wrong with one ``path::name[param]`` reference, or ``None``."""
    if not (ROOT / path).is_file():
        return f"{path}: no such test file"
    node = _functions(path).get(name)
    if node is None:
        return f"{path}::{name}: no such test"
    if param is not None:
        if not any("parametrize" in m for m in _marks(node)):
            return f"{path}::{name}[{param}]: the test is not parametrized"
        if not _param_id_exists(path, param):
            return f"{path}::{name}[{param}]: no such case"
    if gap and not _is_strict_xfail(node):
        return f"{path}::{name}: a gap's test must be xfail(strict=True)"
    if not gap and any("xfail" in m or "skip(" in m for m in _marks(node)):
        return f"{path}::{name}: an expected failure or skip covers nothing"
    return None


@needs_checklist
def test_every_checklist_item_appears_exactly_once_with_its_text() -> None:
    items = checklist(FEATURES.read_text(encoding="utf-8"))
    assert len([i for i, _ in items if not i.startswith("I")]) == 185
    assert len([i for i, _ in items if i.startswith("I")]) == 10
    page = [r for r in rows() if not r.ident.startswith("S")]
    seen = [r.ident for r in page]
    duplicates = sorted({i for i in seen if seen.count(i) > 1})
    assert duplicates == []
    assert seen == [i for i, _ in items]
    texts = {r.ident: r.text for r in page}
    changed = [ident for ident, text in items if texts[ident] != text]
    assert changed == [], "the page's item text differs from the checklist"


def test_every_row_names_existing_tests() -> None:
    problems = []
    for row in rows():
        gap = row.covered.startswith("**gap**")
        refs = REF.findall(row.covered)
        if not refs:
            problems.append(f"line {row.line} ({row.ident}): no test named")
        leftover = REF.sub("", row.covered).replace("<br>", "").replace("**gap**:", "").strip()
        if leftover:
            problems.append(f"line {row.line} ({row.ident}): not a test reference: {leftover!r}")
        for path, name, param in refs:
            wrong = check_reference(path, name, param or None, gap=gap)
            if wrong:
                problems.append(f"line {row.line} ({row.ident}): {wrong}")
    assert problems == []


def test_nothing_is_not_supported_and_gaps_are_sonataflow_only() -> None:
    unsupported = [r.ident for r in rows() if "not supported" in r.notes.lower().split(":")[0]]
    assert unsupported == []
    assert "asyncapi" in _by_ident("6.3")[0].text
    gaps = [r.ident for r in rows() if r.covered.startswith("**gap**")]
    assert all(g.startswith("S") for g in gaps)


def _by_ident(*idents: str) -> list[Row]:
    table = {r.ident: r for r in rows()}
    return [table[i] for i in idents]


def test_the_sonataflow_section_lists_every_leniency_of_the_issue() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "## SonataFlow dialect" in text
    sonata = [r for r in rows() if r.ident.startswith("S")]
    assert [r.ident for r in sonata] == [f"S{n}" for n in range(1, len(sonata) + 1)]
    wanted = (
        "specVersion",
        "--dialect sonataflow",
        "parse as expressions",
        "$WORKFLOW.instanceId",
        "without `arguments`",
        "sysout",
        "service:",
        "Callbacks",
        "resultEventRef",
    )
    for word in wanted:
        assert any(word in r.text for r in sonata), word


def test_the_reference_checker_rejects_what_it_must(tmp_path: Path) -> None:
    here = "tests/unit/test_spec_coverage_doc.py"
    assert check_reference(here, "test_every_row_names_existing_tests", None, gap=False) is None
    assert "no such test" in str(check_reference(here, "test_nothing_here", None, gap=False))
    assert "no such test file" in str(check_reference("tests/unit/nope.py", "t", None, gap=False))
    assert "not parametrized" in str(
        check_reference(here, "test_every_row_names_existing_tests", "x", gap=False)
    )
    assert "xfail(strict=True)" in str(
        check_reference(here, "test_every_row_names_existing_tests", None, gap=True)
    )
    served = "tests/e2e/test_examples_served.py"
    example = "test_example_gives_its_output_through_the_api"
    assert check_reference(served, example, "order-events", gap=False) is None
    assert "no such case" in str(check_reference(served, example, "no-such-example", gap=False))
    rows_text = "\n".join(
        [
            "- [ ] a",
            "## 2. Two",
            "- [ ] b",
            "- [ ] c",
            "## Known spec/schema inconsistencies",
            "1. x",
        ]
    )
    assert checklist("## 1. One\n" + rows_text) == [
        ("1.1", "a"),
        ("2.1", "b"),
        ("2.2", "c"),
        ("I1", "x"),
    ]
