"""Any damaged document yields problems, never a crash (property test)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.fuzzing import paths_in, put_at_path
from tests.unit.test_validate_table import BASE
from tideflow.errors import WorkflowLoadError, WorkflowValidationError
from tideflow.workflow import load_workflow, validate_document
from tideflow.workflow.loader import EXTERNAL_KEYS

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
# Fresh objects per draw: a sampled dict or list shared between edits (or examples) could
# be edited into containing itself.
SPECIAL = st.sampled_from(["${ .a }", "${ ", "PT1S", "Greet", {"end": True}, [{"name": "x"}]]).map(
    copy.deepcopy
)


PATHS = paths_in(BASE)[1:]


def _has_nul(value: Any) -> bool:
    """Whether a string or key in ``value`` holds a NUL character (not the six characters
    of its escape, which a string may hold and which JSON writes as ``\\\\u0000``)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


@settings(max_examples=300, deadline=None)
@given(
    edits=st.lists(
        st.tuples(st.sampled_from(PATHS), st.one_of(JSON, SPECIAL), st.booleans()),
        min_size=1,
        max_size=3,
    )
)
def test_damaged_documents_give_problems_not_crashes(
    edits: list[tuple[tuple[Any, ...], Any, bool]],
) -> None:
    doc = copy.deepcopy(BASE)
    for path, value, delete in edits:
        put_at_path(doc, path, value, delete)
    if _has_nul(doc):  # no definition can be stored with a NUL in it
        with pytest.raises(WorkflowLoadError, match="VALUE_NUL_CHARACTER"):
            load_workflow(json.dumps(doc))
        return
    problems = validate_document(doc)
    assert all(p.message and p.severity in ("error", "warning") for p in problems)
    if any(p.severity == "error" for p in problems):
        with pytest.raises(WorkflowValidationError):
            load_workflow(json.dumps(doc))
    elif not any(isinstance(doc.get(key), str) for key in EXTERNAL_KEYS):
        assert load_workflow(json.dumps(doc)).states
