"""No Python exception escapes as a workflow failure (issue 17), fuzzed on the SonataFlow corpus.

Each example takes a corpus workflow, changes up to three places to odd shapes
(a string where an object belongs, an object where a string does, lists,
numbers, null, deletions), loads it in both readings and runs what loads on
scripted effects whose services answer odd values too. Loading gives a
workflow or problems; a run ends with a result, and a failure carries a code
of Tideflow's (``EXPRESSION``, ``VALIDATION``, ...), never the name of a
Python exception class (``AttributeError: 'str' object has no attribute 'get'``
once reached a user from a function-argument path).
"""

from __future__ import annotations

import builtins
import copy
import json
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.fuzzing import paths_in, put_at_path
from tideflow.errors import WorkflowLoadError, WorkflowValidationError
from tideflow.runtime.fake import ScriptedEffects
from tideflow.runtime.hosts.local import LocalHost, LocalOptions
from tideflow.runtime.interpreter import Interpreter
from tideflow.runtime.result import Failed
from tideflow.workflow.loader import load_and_validate

CORPUS = Path(__file__).resolve().parents[1] / "sonataflow_corpus"
SEEDS = sorted([*CORPUS.glob("*.sw.yaml"), *CORPUS.glob("*.sw.json")])
PYTHON_ERRORS = frozenset(
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
) | {"_WrappedReferencingError", "Unresolvable", "PointerToNowhere", "JSONDecodeError"}

ODD = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["", "x", ".a", "$item"]),
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2)
    ),
    max_leaves=4,
)
SHAPES = st.sampled_from(
    [
        "text",
        "${ .a }",
        ".a.b",
        "{{ .a }}",
        "fn:nothing",
        {"refName": "nothing"},
        {"end": True},
        [{"name": "x"}],
        {"eventRef": "x"},
        {"functionRef": "x"},
        {"results": 1},
        [],
        {},
    ]
).map(copy.deepcopy)


def _seed(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


SEED_DOCS = {path.name: _seed(path) for path in SEEDS}


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, dict[str, Any], Any]:
    name = draw(st.sampled_from(sorted(SEED_DOCS)))
    doc = copy.deepcopy(SEED_DOCS[name])
    places = paths_in(doc)[1:]
    for _ in range(draw(st.integers(1, 3))):
        put_at_path(
            doc, draw(st.sampled_from(places)), draw(st.one_of(ODD, SHAPES)), draw(st.booleans())
        )
    answer = draw(st.one_of(ODD, SHAPES))
    return name, doc, answer


def _input(name: str) -> Any:
    stem = name.rsplit(".sw.", 1)[0]
    path = CORPUS / f"{stem}.input.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _events(name: str) -> list[dict[str, Any]]:
    stem = name.rsplit(".sw.", 1)[0]
    path = CORPUS / f"{stem}.events.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cases())
async def test_odd_shapes_give_problems_or_coded_failures_never_python_errors(
    case: tuple[str, dict[str, Any], Any],
) -> None:
    name, doc, answer = case
    for dialect in (None, "sonataflow"):
        try:
            workflow, _ = load_and_validate(json.dumps(doc), base_dir=CORPUS, dialect=dialect)
        except (WorkflowValidationError, WorkflowLoadError):
            continue
        functions = {f.name: copy.deepcopy(answer) for f in workflow.functions}
        effects = ScriptedEffects(functions, events=_events(name))
        result = await Interpreter(workflow, dialect=dialect).run(_input(name), effects)
        if isinstance(result, Failed):
            assert result.error.code not in PYTHON_ERRORS, (dialect, result.error)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cases())
async def test_the_local_host_and_its_invokers_never_let_a_python_error_through(
    case: tuple[str, dict[str, Any], Any],
) -> None:
    # The real invokers (sysout built in, service: unbound, python callables) on odd shapes.
    name, doc, answer = case
    path = CORPUS / f"fuzz-{name}"
    try:
        workflow, _ = load_and_validate(json.dumps(doc), base_dir=CORPUS, dialect="sonataflow")
    except (WorkflowValidationError, WorkflowLoadError):
        return
    bound = {
        f.name: (lambda _args, a=answer: copy.deepcopy(a))
        for f in workflow.functions
        if not (f.operation or "").startswith(("sysout", "service:"))
    }
    options = LocalOptions(
        functions=bound, events=_events(name), dialect="sonataflow", log=lambda _line: None
    )
    async with LocalHost(options) as host:
        run = await host.run(workflow, _input(name), path.parent)
    if isinstance(run.result, Failed):
        assert run.result.error.code not in PYTHON_ERRORS, run.result.error


async def test_an_unforeseen_exception_fails_with_internal_error_not_its_class_name() -> None:
    class Broken(ScriptedEffects):
        async def sleep(self, request: Any) -> None:
            raise AttributeError("'str' object has no attribute 'get'")

    doc = {
        "id": "nap",
        "specVersion": "0.8",
        "states": [{"name": "Nap", "type": "sleep", "duration": "PT1S", "end": True}],
    }
    workflow, _ = load_and_validate(json.dumps(doc))
    result = await Interpreter(workflow).run({}, Broken())
    assert isinstance(result, Failed)
    assert result.error.code == "InternalError"
    assert result.error.message == "AttributeError: 'str' object has no attribute 'get'"
