"""``docs/spec-coverage-1.0.md`` stays true: every section once, in order; every test real.

The page maps each section of the DSL 1.0 reference (and the ``dsl.md``
concepts it relies on) to the tests that cover it. This test checks the
sections against :data:`SECTIONS`, every ``path::test[case]`` reference
against the test files (cases of the CTK and example tests against the
corpus, when ``../shared/conformance`` is present), and that every CTK
scenario is referenced somewhere.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tests.e2e.test_ctk_sw1 import scenarios
from tests.e2e.test_sw1_examples import FAULTING, RUNNABLE
from tests.e2e.test_sw1_examples_served import SERVED, STARTED_BY_EVENT
from tests.support.sw1 import example_files, needs_sw1

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "spec-coverage-1.0.md"
REF = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)(?:\[([^\]]+)\])?`")
ROW = re.compile(r"^\|\s*\*\*([^*]+)\*\*\s*\|")
STATUSES = ("supported", "partial", "not supported")

SECTIONS = (
    "Workflow", "Document", "Use", "Schedule", "Evaluate", "Task", "Call", "AsyncAPI Call",
    "gRPC Call", "HTTP Call", "OpenAPI Call", "A2A Call", "MCP Call", "Do", "Emit", "For",
    "Fork", "Listen", "Raise", "Run", "Container Process", "Shell Process", "Script Process",
    "Workflow Process", "Set", "Switch", "Try", "Wait", "Flow Directive", "Lifecycle Events",
    "External Resource", "Authentication", "Basic Authentication", "Bearer Authentication",
    "Certificate Authentication", "Digest Authentication", "OAUTH2 Authentication",
    "OpenIdConnect Authentication", "Catalog", "Extension", "Error", "Standard Error Types",
    "Event Consumption Strategy", "Event Filter", "Event Properties", "Subscription Iterator",
    "Retry", "Input", "Output", "Export", "Schema", "Timeout", "Duration", "Endpoint",
    "URI Template", "HTTP Response", "HTTP Request", "Container Lifetime", "Process Result",
    "AsyncAPI Server", "AsyncAPI Outbound Message", "AsyncAPI Inbound Message",
    "AsyncAPI Subscription", "AsyncAPI Message Consumption Policy", "MCP Transport",
    "MCP HTTP Transport", "MCP STDIO Transport", "MCP Client", "Runtime Expressions",
    "Runtime Expression Arguments", "Data Flow", "Task Flow", "Status Phases", "Determinism",
)  # fmt: skip
"""The sections of the 1.0 reference (and concepts of dsl.md), in the page's order."""


@dataclass(frozen=True)
class Row:
    """One table row of the page."""

    section: str
    status: str
    covered: str
    notes: str
    line: int


def rows() -> list[Row]:
    found = []
    for number, line in enumerate(DOC.read_text(encoding="utf-8").splitlines(), 1):
        match = ROW.match(line)
        if match is None:
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        assert len(cells) == 4, f"docs/spec-coverage-1.0.md:{number}: expected 4 cells"
        found.append(Row(match.group(1), cells[1], cells[2], cells[3], number))
    return found


@cache
def _functions(path: str) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    return {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def _cases(path: str, name: str) -> set[str] | None:
    """The case ids a parametrized test has, or ``None`` when they come from the corpus only."""
    if name == "test_ctk_scenario":
        return {s.ident for s in scenarios()} or None
    if name == "test_example_runs_to_its_output":
        return set(RUNNABLE)
    if name == "test_example_runs_to_its_output_when_served":
        return set(SERVED)
    if name == "test_example_started_by_its_event_when_served":
        return set(STARTED_BY_EVENT)
    if name == "test_example_faults_as_written":
        return set(FAULTING)
    if name == "test_every_example_validates":
        return {p.name for p in example_files()} or None
    source = (ROOT / path).read_text(encoding="utf-8")
    return set(re.findall(r"[\"']([\w\- .:]+)[\"']", source))


def check(path: str, name: str, case: str) -> str | None:
    """What is wrong with one reference, or ``None``."""
    if not (ROOT / path).is_file():
        return f"{path}: no such file"
    node = _functions(path).get(name)
    if node is None:
        return f"{path}::{name}: no such test"
    marks = [ast.unparse(d) for d in node.decorator_list]
    if any("xfail" in m or "skip(" in m for m in marks):
        return f"{path}::{name}: an expected failure or skip covers nothing"
    if case:
        if not any("parametrize" in m for m in marks):
            return f"{path}::{name}[{case}]: the test is not parametrized"
        cases = _cases(path, name)
        if cases is not None and case not in cases:
            return f"{path}::{name}[{case}]: no such case"
    return None


def test_every_section_appears_once_in_order() -> None:
    assert [r.section for r in rows()] == list(SECTIONS)


def test_every_row_has_a_status_and_real_tests() -> None:
    problems = []
    for row in rows():
        if row.status not in STATUSES:
            problems.append(f"line {row.line}: status {row.status!r}")
        refs = REF.findall(row.covered)
        leftover = REF.sub("", row.covered).replace("<br>", "").strip()
        if not refs and not (row.status == "not supported" and leftover == "—"):
            problems.append(f"line {row.line} ({row.section}): no test named")
        elif refs and leftover:
            problems.append(f"line {row.line} ({row.section}): not a reference: {leftover!r}")
        if row.status != "supported" and not row.notes:
            problems.append(f"line {row.line} ({row.section}): say what is missing")
        for path, name, case in refs:
            wrong = check(path, name, case)
            if wrong:
                problems.append(f"line {row.line} ({row.section}): {wrong}")
    assert problems == []


@needs_sw1
def test_every_ctk_scenario_is_referenced() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [s.ident for s in scenarios() if f"test_ctk_scenario[{s.ident}]" not in text]
    assert missing == []
