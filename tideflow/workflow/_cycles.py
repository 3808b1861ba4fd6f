"""Documents that contain themselves (a YAML alias cycle such as ``data: &d {x: *d}``).

YAML anchors and aliases make a parsed document a graph, not a tree: an alias
may repeat a value (harmless) or name one of its own ancestors, which makes
the document infinite. Every walk of the document would recurse without end,
so :func:`cycle_problems` runs first and a cyclic document is reported as such.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tideflow.errors import PathPart, Problem, format_path


def cycle_problems(doc: Any) -> list[Problem]:
    """One problem per place where the document contains one of its ancestors.

    Args:
        doc: A parsed document (shared, non-cyclic values are fine).

    Returns:
        The problems in document order, each at the path of the value that
        refers back; an empty list for a document that is a tree (or a DAG).
    """
    problems: list[Problem] = []
    _walk(doc, (), {}, set(), problems)
    return problems


def _walk(
    value: Any,
    path: tuple[PathPart, ...],
    ancestors: dict[int, tuple[PathPart, ...]],
    done: set[int],
    problems: list[Problem],
) -> None:
    """Depth first; ``ancestors`` maps the containers on the current path to their paths."""
    if not isinstance(value, Mapping | list):
        return
    key = id(value)
    if key in ancestors:
        where = format_path(ancestors[key])
        message = f"refers back to {where}, which contains it: a definition cannot contain itself"
        problems.append(Problem(path=path, message=f"{message} (a YAML alias cycle)"))
        return
    if key in done:  # an alias repeating a value already checked
        return
    ancestors[key] = path
    parts: list[tuple[PathPart, Any]] = (
        [(str(name), item) for name, item in value.items()]
        if isinstance(value, Mapping)
        else list(enumerate(value))
    )
    for part, item in parts:
        _walk(item, (*path, part), ancestors, done, problems)
    del ancestors[key]
    done.add(key)
