"""Hypothesis strategies for fuzzing Tideflow's inputs: CloudEvents HTTP requests and
workflow definitions (used by ``tests/unit/test_fuzz_inputs.py`` and
``tests/e2e/test_api_fuzz_served.py``).

Requests: ASGI header pairs (``ce-*`` headers, content types of every mode and
odd ones) and bodies (random bytes, events with each attribute plausible,
wrong or absent, batches, any JSON), sometimes damaged. Definitions: the
examples (and the DSL 1.0 corpus, when present) with up to three random edits
-- JSON values, YAML-only values (tags, aliases, dates, NaN), deletions, new
keys in objects -- rendered as JSON or YAML, sometimes damaged as text.
"""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from tests.support.sw1 import example_files
from tideflow.http_binding import BATCH, STRUCTURED
from tideflow.workflow.loader import external_references

ROOT = Path(__file__).resolve().parents[2]


def put_at_path(doc: Any, path: tuple[Any, ...], value: Any, delete: bool) -> None:
    """Set (a copy of) ``value`` at ``path`` in ``doc``, or delete it; no-op where the path
    no longer fits (an earlier edit changed its shape)."""
    target: Any = doc
    try:
        for part in path[:-1]:
            target = target[part]
        if delete and isinstance(target, dict):
            target.pop(path[-1], None)
        else:
            target[path[-1]] = copy.deepcopy(value)  # never the same object twice
    except (KeyError, IndexError, TypeError):
        return


def paths_in(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value, the value itself first (``()``)."""
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths_in(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths_in(item, (*path, index))
    return found


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63, max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
ATTRIBUTE_VALUES = {
    "specversion": st.sampled_from(["1.0", "0.3", ""]),
    "id": st.text(max_size=10),
    "source": st.sampled_from(["/s", "urn:x", "a b", ""]) | st.text(max_size=10),
    "type": st.text(max_size=10),
    "time": st.sampled_from(
        ["2026-12-06T10:00:00Z", "2026-13-01T00:00:00Z", "0001-01-01T00:00:00+14:00"]
    )
    | st.text(max_size=25),
    "dataschema": st.sampled_from(["http://x/s", "not a uri"]),
    "datacontenttype": st.sampled_from(["application/json", "text/plain"]),
    "deliverytime": st.sampled_from(["9999-12-31T23:59:59Z", "2026-12-06T10:00:00Z"])
    | st.text(max_size=25),
    "delay": st.sampled_from(["PT1S", "-PT1S", "P9999999999Y", "PT1e400S", "P1D"])
    | st.text(max_size=12),
    "data_base64": st.sampled_from(["aGVsbG8=", "!!"]),
    "data": JSON,
}
EXTENSION_NAMES = st.sampled_from(["ext", "traceparent", "partitionkey", "Bad-Name", "data"])


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """A JSON-format event: each attribute a plausible value, a wrong one, or absent."""
    event: dict[str, Any] = {}
    for name, values in ATTRIBUTE_VALUES.items():
        required = name in ("specversion", "id", "source", "type")
        if draw(st.floats(0, 1)) < (0.9 if required else 0.25):
            event[name] = draw(values | JSON) if draw(st.booleans()) else draw(values)
    for name in draw(st.lists(EXTENSION_NAMES | st.text(max_size=6), max_size=2)):
        event[name] = draw(JSON)
    return event


CONTENT_TYPES = st.sampled_from(
    [
        STRUCTURED,
        BATCH,
        f"{STRUCTURED}; charset=latin-1",
        "application/cloudevents+xml",
        "application/json",
        "application/json; charset=utf-8",
        "text/plain; charset=no-such-charset",
        "text/plain; charset=utf-16",
        "application/octet-stream",
        "",
    ]
) | st.text(max_size=30)
HEADER_VALUES = st.binary(max_size=30) | st.sampled_from(
    [b"1.0", b"%C0%A0", b'"quoted \\" value"', b"%FF", b"/s", b"2026-12-06T10:00:00Z"]
)
HEADER_NAMES = st.sampled_from(
    [
        *(b"ce-" + name for name in (b"specversion", b"id", b"source", b"type", b"time")),
        *(b"ce-" + name for name in (b"data", b"datacontenttype", b"deliverytime", b"delay")),
        *(b"ce-Bad", b"ce-", b"x-other"),
    ]
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Headers (ASGI pairs) and a body: random bytes or JSON events, in any content mode."""
    headers = [(name, draw(HEADER_VALUES)) for name in draw(st.lists(HEADER_NAMES, max_size=6))]
    if draw(st.booleans()):
        content_type = draw(CONTENT_TYPES).encode("utf-8", "replace")
        headers.append((draw(st.sampled_from([b"content-type", b"Content-Type"])), content_type))
    body = draw(
        st.binary(max_size=60)
        | events().map(lambda e: json.dumps(e).encode())
        | st.lists(events(), max_size=3).map(lambda es: json.dumps(es).encode())
        | JSON.map(lambda v: json.dumps(v).encode())
    )
    if body and draw(st.booleans()):  # damage it: cut, or a byte changed
        at = draw(st.integers(0, len(body) - 1))
        body = body[:at] + draw(st.binary(max_size=2)) + body[at + 1 :]
    return headers, body


def _seeds() -> list[dict[str, Any]]:
    paths = sorted((ROOT / "examples" / "workflows").glob("*.yaml"))
    paths += sorted((ROOT / "examples" / "mixed").glob("*.yaml")) + example_files()
    seeds = [yaml.safe_load(path.read_text()) for path in paths]
    # no deploy-time fetches: a unit test does no I/O
    return [seed for seed in seeds if not any(r.remote for r in external_references(seed))]


SEEDS = _seeds()
YAML_SPECIALS = st.sampled_from(
    ["!!binary aGVsbG8=", "!!set {a: null}", "!!omap [a: 1]"]
) | st.sampled_from(
    [
        "2020-01-01",
        "2020-01-01T10:00:00Z",
        ".nan",
        "-.inf",
        "123456789012345678901234567890",
        "0x1F",
        "'\\0'",
        '"\\0"',
        "&anchor [1, *anchor]",
        "{? [1, 2] : x}",
        "${ .a }",
        "'${ def f: f; f }'",
        "'* * * * *'",
        "'not a cron'",
        "{cron: {expression: '61 * * * *'}}",
        "P1Y",
        "PT-1S",
    ]
)


def _put(document: Any, path: tuple[Any, ...], value: Any) -> None:
    target = document
    for part in path[:-1]:
        target = target[part]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value


_DELETE = object()


NEW_KEYS = st.sampled_from(["metadata", "data", "x", "input", "output"]) | st.text(max_size=6)


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        document = document[part]
    return document


@st.composite
def edit(draw: st.DrawFn, document: Any, marks: dict[str, str]) -> None:
    """Replace, delete or add one value of ``document``: JSON, or a YAML-only value (put in
    as a placeholder, written out as YAML). Added keys go into objects, free-form ones (data,
    metadata) among them, where validation looks at nothing."""
    places = paths_in(document)
    kind = draw(st.sampled_from(["json", "yaml", "delete", "add"]))
    if kind == "add":
        objects = [p for p in places if isinstance(_at(document, p), dict)]
        path = (*draw(st.sampled_from(objects)), draw(NEW_KEYS))
    elif len(places) > 1:
        path = draw(st.sampled_from(places[1:]))
    else:
        return
    value: Any = _DELETE if kind == "delete" else draw(JSON)
    if kind in ("yaml", "add") and draw(st.booleans()):
        value = f"@mark{len(marks)}@"
        marks[value] = draw(YAML_SPECIALS)
    with contextlib.suppress(KeyError, IndexError, TypeError):  # not a place after all
        _put(document, path, value)


@st.composite
def definitions(draw: st.DrawFn) -> str:
    """A seed definition with up to three edits, as JSON or YAML text (maybe damaged)."""
    document = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    marks: dict[str, str] = {}
    for _ in range(draw(st.integers(0, 3))):
        draw(edit(document, marks))
    if not marks and draw(st.booleans()):
        text = json.dumps(document)
    else:
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
        for mark, special in marks.items():
            text = text.replace(f"'{mark}'", special).replace(mark, special)
    if draw(st.integers(0, 4)) == 0:  # damage the text itself
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(max_size=4)) + text[at + draw(st.integers(0, 8)) :]
    return text
