"""Named SQL: every query of every ``sql/*.sql`` file is used by its gateway, and only there.

A subpackage's gateway (``gateway.py``; ``db.py`` for the migrations' own
``tideflow/sql/queries.sql``) is the only module that loads its query files
and the only one that names their queries; nothing imports the loaded dicts.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tideflow.db import load_queries

PACKAGE = Path(__file__).resolve().parents[2] / "tideflow"


def _gateway_of(sql_file: Path) -> Path:
    package_dir = sql_file.parent.parent
    return PACKAGE / "db.py" if package_dir == PACKAGE else package_dir / "gateway.py"


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text("utf-8"))


def _strings(tree: ast.AST) -> set[str]:
    return {
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }


def _loaded_names(tree: ast.Module) -> set[str]:
    """Module-level names bound to ``load_queries(...)``."""
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Name) and func.id == "load_queries":
                names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def test_every_named_query_is_used_by_its_gateway() -> None:
    files = sorted(PACKAGE.rglob("sql/*.sql"))
    assert len(files) >= 6
    unused = []
    for sql_file in files:
        gateway = _gateway_of(sql_file)
        assert gateway.exists(), f"{sql_file} has no gateway {gateway}"
        package = ".".join(sql_file.parent.parent.relative_to(PACKAGE.parent).parts)
        used = _strings(_tree(gateway))
        assert sql_file.name in used or sql_file.name == "queries.sql", (
            f"{gateway.name} does not load {sql_file.name}"
        )
        for name in load_queries(package, sql_file.name):
            if name not in used:
                unused.append(f"{sql_file.relative_to(PACKAGE)}: {name}")
    assert unused == []


def test_only_gateways_load_queries_and_nobody_imports_them() -> None:
    gateways = {_gateway_of(f) for f in PACKAGE.rglob("sql/*.sql")}
    loaded = {g: _loaded_names(_tree(g)) for g in gateways}
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = _tree(path)
        where = str(path.relative_to(PACKAGE))
        if path not in gateways and _loaded_names(tree):
            offenders.append(f"{where} loads queries")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                source = PACKAGE.parent / (node.module.replace(".", "/") + ".py")
                taken = {a.name for a in node.names} & loaded.get(source, set())
                if taken:
                    offenders.append(f"{where} imports {sorted(taken)} from {node.module}")
    assert offenders == []


RUNTIME_TABLES = (
    "tideflow_instances",
    "tideflow_journal",
    "tideflow_event_waits",
    "tideflow_correlation_keys",
    "tideflow_correlation_inbox",
    "tideflow_correlation_partial",
    "tideflow_correlation_pending",
    "tideflow_correlation_origins",
)


def test_the_trigger_side_reaches_the_runtime_through_its_port() -> None:
    triggers = PACKAGE / "triggers"
    for sql_file in sorted((triggers / "sql").glob("*.sql")):
        text = sql_file.read_text("utf-8")
        assert [t for t in RUNTIME_TABLES if t in text] == [], sql_file.name
    statements = {"fetch", "fetchrow", "fetchval", "execute", "executemany", "deliver_many"}
    for module in ("correlation.py", "start_sets.py"):
        calls = {
            node.func.attr
            for node in ast.walk(_tree(triggers / module))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        }
        assert calls & statements == set(), module
