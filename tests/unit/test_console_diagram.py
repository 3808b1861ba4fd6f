"""The console's diagram: edges read from 0.8 and 1.0 definitions, marks, escaping, bounds."""

from __future__ import annotations

from tideflow.console import diagram


def _08() -> dict[str, object]:
    return {
        "start": "A",
        "states": [
            {"name": "A", "type": "operation", "transition": "B",
             "onErrors": [{"errorRef": "Boom", "transition": "C"}]},
            {"name": "B", "type": "switch",
             "dataConditions": [{"condition": "${ .x }", "transition": "A"}],
             "defaultCondition": {"end": True}},
            {"name": "C", "type": "event", "eventConditions": [{"eventRef": "Go", "end": True}]},
        ],
    }


def test_edges_of_a_08_definition_name_their_kind() -> None:
    g = diagram.graph(_08())
    kinds = {(e.source, e.target, e.kind) for e in g.edges}
    assert kinds == {
        ("A", "B", "next"),
        ("A", "C", "error"),
        ("B", "A", "condition"),
        ("B", diagram.END, "condition"),
        ("C", diagram.END, "event"),
    }
    assert diagram.layers(g) == {"A": 0, "B": 1, "C": 1, diagram.END: 2}


def test_a_10_definition_runs_in_order_unless_then_says_otherwise() -> None:
    g = diagram.graph({"do": [{"one": {"set": {}}}, {"two": {"set": {}, "then": "end"}},
                              {"three": {"wait": {}}}]})
    assert [(e.source, e.target) for e in g.edges] == [
        ("one", "two"), ("two", diagram.END), ("three", diagram.END)
    ]
    assert dict(g.nodes) == {"one": "set", "two": "set", "three": "wait"}


def test_the_current_and_failing_states_are_marked_and_names_escaped() -> None:
    hostile = '<img src=x onerror="alert(1)">'
    definition = {"start": hostile, "states": [
        {"name": hostile, "type": "inject", "transition": "B"},
        {"name": "B", "type": "inject", "end": True},
    ]}
    svg = diagram.render_svg(diagram.graph(definition), current=hostile, failed="B")
    assert "<img" not in svg
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in svg
    assert 'class="node current" data-state="&lt;img' in svg
    assert 'class="node failed" data-state="B" aria-current="step"' in svg


def test_anything_else_draws_nothing_and_a_huge_workflow_is_cut() -> None:
    assert "No diagram" in diagram.render_svg(diagram.graph("states: 3"))
    states = [{"name": f"s{i}", "type": "inject", "transition": f"s{i + 1}"} for i in range(300)]
    g = diagram.graph({"start": "s0", "states": states})
    assert len(g.nodes) == diagram.MAX_NODES
    assert g.cut
    assert "only the first" in diagram.render_svg(g)
