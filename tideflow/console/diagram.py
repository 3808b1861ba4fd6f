"""A workflow's diagram: its states and transitions as SVG, drawn from the definition.

Pure: :func:`graph` reads a definition (the parsed source of a Serverless Workflow
0.8 ``states`` list, or the top-level ``do`` list of a 1.0 one) into nodes and
edges -- transitions, switch conditions, event conditions, error edges,
compensations -- and :func:`render_svg` lays them out in layers (breadth-first
from the start) and writes an SVG that needs no script or style sheet from
elsewhere. The current state and the failing state are marked by class
(``current``, ``failed``) and by ``aria-current``. Everything taken from the
definition is escaped. At most :data:`MAX_NODES` states are drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any, Final

MAX_NODES: Final = 200
"""The most states a diagram draws (a bigger workflow is cut, and says so)."""
BOX_W: Final = 190
BOX_H: Final = 38
GAP_X: Final = 40
GAP_Y: Final = 56
MARGIN: Final = 20
END: Final = "(end)"
_LABEL_CHARS: Final = 26


@dataclass(frozen=True, slots=True)
class Edge:
    """A way from one state to another: ``kind`` is ``next``, ``condition``, ``event``,
    ``error`` or ``compensation``; ``label`` says which condition or error."""

    source: str
    target: str
    kind: str
    label: str = ""


@dataclass(frozen=True, slots=True)
class Graph:
    """A workflow's states (in definition order, with their types) and edges."""

    start: str | None
    nodes: tuple[tuple[str, str], ...]
    edges: tuple[Edge, ...]
    cut: bool = False
    has_end: bool = field(default=False)


def graph(definition: Any) -> Graph:
    """The states and edges of a definition (an empty graph for anything else)."""
    if not isinstance(definition, Mapping):
        return Graph(None, (), ())
    if isinstance(definition.get("states"), list):
        return _graph_08(definition)
    if isinstance(definition.get("do"), list):
        return _graph_10(definition["do"])
    return Graph(None, (), ())


def _target(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("nextState"), str):
        return str(value["nextState"])
    return None


def _exits(source: str, item: Mapping[str, Any], kind: str, label: str) -> list[Edge]:
    """The edge of an item holding ``transition`` or ``end``."""
    target = _target(item.get("transition"))
    if target is not None:
        return [Edge(source, target, kind, label)]
    if item.get("end"):
        return [Edge(source, END, kind, label)]
    return []


def _state_edges(name: str, state: Mapping[str, Any]) -> list[Edge]:
    edges = _exits(name, state, "next", "")
    for index, condition in enumerate(_maps(state.get("dataConditions"))):
        label = str(condition.get("name") or condition.get("condition") or f"case {index + 1}")
        edges += _exits(name, condition, "condition", label)
    for condition in _maps(state.get("eventConditions")):
        label = str(condition.get("name") or condition.get("eventRef") or "event")
        edges += _exits(name, condition, "event", label)
    default = state.get("defaultCondition")
    if isinstance(default, Mapping):
        edges += _exits(name, default, "condition", "default")
    for handler in _maps(state.get("onErrors")):
        refs = handler.get("errorRefs") or [handler.get("errorRef") or "error"]
        label = ", ".join(str(r) for r in refs) if isinstance(refs, list) else str(refs)
        edges += _exits(name, handler, "error", label)
    if isinstance(state.get("compensatedBy"), str):
        edges.append(Edge(name, state["compensatedBy"], "compensation", "compensated by"))
    return edges


def _maps(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _graph_08(definition: Mapping[str, Any]) -> Graph:
    states = [s for s in _maps(definition["states"]) if isinstance(s.get("name"), str)]
    cut = len(states) > MAX_NODES
    states = states[:MAX_NODES]
    nodes = tuple((str(s["name"]), str(s.get("type", ""))) for s in states)
    names = {name for name, _ in nodes}
    edges = [e for s in states for e in _state_edges(str(s["name"]), s)]
    edges = [e for e in edges if e.target in names or e.target == END]
    start = definition.get("start")
    start_name = _target(start) if not isinstance(start, Mapping) else start.get("stateName")
    first = str(start_name) if isinstance(start_name, str) else (nodes[0][0] if nodes else None)
    return Graph(first, nodes, tuple(edges), cut, any(e.target == END for e in edges))


def _graph_10(tasks: Sequence[Any]) -> Graph:
    named = [
        (str(name), body)
        for item in tasks
        if isinstance(item, Mapping) and len(item) == 1
        for name, body in item.items()
    ]
    cut = len(named) > MAX_NODES
    named = named[:MAX_NODES]
    names = [name for name, _ in named]
    nodes = tuple((name, _task_kind(body)) for name, body in named)
    edges: list[Edge] = []
    for index, (name, body) in enumerate(named):
        following = names[index + 1] if index + 1 < len(names) else END
        then = body.get("then") if isinstance(body, Mapping) else None
        for case in _maps(body.get("switch")) if isinstance(body, Mapping) else []:
            for case_name, case_body in case.items():
                if isinstance(case_body, Mapping):
                    edges.append(_then(name, case_body.get("then"), following, str(case_name)))
        if not (isinstance(body, Mapping) and "switch" in body) or then is not None:
            edges.append(_then(name, then, following, ""))
    known = set(names) | {END}
    edges = [e for e in edges if e.target in known]
    return Graph(names[0] if names else None, nodes, tuple(edges), cut, True)


def _then(source: str, then: Any, following: str, label: str) -> Edge:
    kind = "condition" if label else "next"
    if then in (None, "continue"):
        return Edge(source, following, kind, label)
    if then in ("end", "exit"):
        return Edge(source, END, kind, label)
    return Edge(source, str(then), kind, label)


def _task_kind(body: Any) -> str:
    if isinstance(body, Mapping):
        for key in body:
            if key not in ("if", "then", "input", "output", "export", "timeout", "metadata"):
                return str(key)
    return ""


def layers(g: Graph) -> dict[str, int]:
    """Each node's row: its distance from the start (unreachable nodes below the rest)."""
    depth: dict[str, int] = {}
    if g.start is not None and any(name == g.start for name, _ in g.nodes):
        depth[g.start] = 0
        frontier = [g.start]
        following: dict[str, list[str]] = {}
        for edge in g.edges:
            following.setdefault(edge.source, []).append(edge.target)
        while frontier:
            nxt: list[str] = []
            for node in frontier:
                for target in following.get(node, []):
                    if target not in depth and target != END:
                        depth[target] = depth[node] + 1
                        nxt.append(target)
            frontier = nxt
    bottom = max(depth.values(), default=-1) + 1
    for name, _ in g.nodes:
        depth.setdefault(name, bottom)
    if g.has_end:
        depth[END] = max(depth.values(), default=-1) + 1
    return depth


def render_svg(g: Graph, *, current: str | None = None, failed: str | None = None) -> str:
    """The diagram as an SVG element (``current``/``failed``: the states to mark)."""
    if not g.nodes:
        return '<p class="muted">No diagram: the definition has no states.</p>'
    rows = layers(g)
    by_row: dict[int, list[str]] = {}
    for name, _ in [*g.nodes, *([(END, "")] if g.has_end else [])]:
        by_row.setdefault(rows[name], []).append(name)
    widest = max(len(names) for names in by_row.values())
    width = MARGIN * 2 + widest * BOX_W + (widest - 1) * GAP_X
    height = MARGIN * 2 + len(by_row) * BOX_H + (len(by_row) - 1) * GAP_Y
    place: dict[str, tuple[float, float]] = {}
    for row, names in by_row.items():
        span = len(names) * BOX_W + (len(names) - 1) * GAP_X
        left = (width - span) / 2
        for index, name in enumerate(names):
            place[name] = (left + index * (BOX_W + GAP_X), MARGIN + row * (BOX_H + GAP_Y))
    types = dict(g.nodes)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="diagram" role="img" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}" '
        f'aria-label="Workflow diagram: {len(g.nodes)} states">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="context-stroke"/></marker></defs>',
    ]
    parts += [_edge_svg(edge, place) for edge in g.edges]
    for name in place:
        parts.append(_node_svg(name, types.get(name, ""), place[name], current, failed))
    if g.cut:
        parts.append(
            f'<text x="{MARGIN}" y="{height - 4:.0f}" class="cut">'
            f"only the first {MAX_NODES} states are drawn</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _node_svg(
    name: str, kind: str, at: tuple[float, float], current: str | None, failed: str | None
) -> str:
    x, y = at
    classes = ["node"]
    if name == END:
        classes.append("end")
    if name == current:
        classes.append("current")
    if name == failed:
        classes.append("failed")
    label = name if len(name) <= _LABEL_CHARS else name[: _LABEL_CHARS - 1] + "…"
    marked = ' aria-current="step"' if name in (current, failed) else ""
    title = f"{name} ({kind})" if kind else name
    rx = BOX_H / 2 if name == END else 6
    return (
        f'<g class="{" ".join(classes)}" data-state="{escape(name)}"{marked}>'
        f"<title>{escape(title)}</title>"
        f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="{rx:.0f}"/>'
        f'<text x="{x + BOX_W / 2:.0f}" y="{y + BOX_H / 2 + 5:.0f}" '
        f'text-anchor="middle">{escape(label)}</text></g>'
    )


def _edge_svg(edge: Edge, place: Mapping[str, tuple[float, float]]) -> str:
    sx, sy = place[edge.source]
    tx, ty = place[edge.target]
    x1, y1 = sx + BOX_W / 2, sy + BOX_H
    x2, y2 = tx + BOX_W / 2, ty
    if ty <= sy:  # back or sideways: a curve around the right side
        x1, y1 = sx + BOX_W, sy + BOX_H / 2
        x2, y2 = tx + BOX_W, ty + BOX_H / 2
        bend = max(x1, x2) + GAP_X * 0.8
        path = f"M{x1:.0f},{y1:.0f} C{bend:.0f},{y1:.0f} {bend:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
    else:
        mid = (y1 + y2) / 2
        path = f"M{x1:.0f},{y1:.0f} C{x1:.0f},{mid:.0f} {x2:.0f},{mid:.0f} {x2:.0f},{y2:.0f}"
    title = f"{edge.kind}: {edge.label}" if edge.label else edge.kind
    return (
        f'<path class="edge {edge.kind}" d="{path}" marker-end="url(#arrow)">'
        f"<title>{escape(title)}</title></path>"
    )
