"""Zip bundles read in memory (tideflow.bundle): names, bounds, the definition, references."""

from __future__ import annotations

import io
import zipfile

import pytest

from tideflow.bundle import Bundle, BundleLimits, read_bundle
from tideflow.errors import WorkflowValidationError, format_path
from tideflow.workflow.loader import Unreadable

DEFINITION = "id: x\nversion: '1'\nspecVersion: '0.8'\n"


def zipped(files: dict[str, bytes | str], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def refusals(data: bytes, **kwargs: object) -> list[tuple[str, str]]:
    with pytest.raises(WorkflowValidationError) as caught:
        read_bundle(data, **kwargs)  # type: ignore[arg-type]
    return [(format_path(p.path), p.message) for p in caught.value.problems]


def test_the_one_definition_at_the_root_is_the_workflow() -> None:
    bundle = read_bundle(
        zipped({"flow.sw.yaml": DEFINITION, "specs/a.yaml": "x", "flow.input.json": "{}"})
    )
    assert bundle.workflow == "flow.sw.yaml"
    assert bundle.definition == DEFINITION.encode()
    assert bundle.media == "application/yaml"
    assert sorted(bundle.files) == ["flow.input.json", "flow.sw.yaml", "specs/a.yaml"]


def test_several_definitions_need_a_name() -> None:
    data = zipped({"a.yaml": DEFINITION, "b.json": "{}", "dir/c.yaml": DEFINITION})
    ((path, message),) = refusals(data)
    assert path == "bundle"
    assert "several workflow definitions at its root (a.yaml, b.json)" in message
    assert read_bundle(data, "b.json").media == "application/json"
    assert read_bundle(data, "dir/c.yaml").workflow == "dir/c.yaml"
    assert refusals(data, workflow="nope.yaml") == [
        ("bundle.nope.yaml", "no such file in the bundle (?workflow=)")
    ]


def test_no_definition_is_refused() -> None:
    ((path, message),) = refusals(zipped({"specs/a.yaml": "x"}))
    assert (path, "no workflow definition" in message) == ("bundle", True)


def test_every_refused_name_is_reported_with_its_path() -> None:
    data = zipped({"a.yaml": DEFINITION, "../up.json": "{}", "C:/win.json": "{}", "b\\c": "x"})
    found = dict(refusals(data))
    assert set(found) == {"bundle.../up.json", "bundle.C:/win.json", "bundle.b\\c"}
    assert "'..'" in found["bundle.../up.json"]
    assert "absolute path" in found["bundle.C:/win.json"]


def test_a_name_given_twice_is_refused() -> None:
    data = zipped({"a.yaml": DEFINITION, "x.json": "1", "./x.json": "2"})
    assert refusals(data) == [("bundle../x.json", "the name appears twice")]


def test_bounds_on_files_and_expanded_bytes() -> None:
    data = zipped({"a.yaml": DEFINITION, **{f"f{i}.json": "{}" for i in range(4)}})
    assert refusals(data, limits=BundleLimits(max_files=3)) == [("bundle", "5 files: at most 3")]
    ((path, message),) = refusals(data, limits=BundleLimits(max_bytes=40))
    assert (path, message.endswith("bytes expanded: at most 40")) == ("bundle", True)


def test_the_compression_ratio_is_bounded_above_a_floor() -> None:
    data = zipped({"a.yaml": DEFINITION, "data/zeros.json": b"0" * 200_000})
    ((path, message),) = refusals(data)
    assert path == "bundle.data/zeros.json"
    assert "more than 100 times" in message
    # the same file stored uncompressed, or under the floor, passes
    stored = zipped({"a.yaml": DEFINITION, "z": b"0" * 200_000}, zipfile.ZIP_STORED)
    assert len(read_bundle(stored).files["z"]) == 200_000
    assert len(read_bundle(data, limits=BundleLimits(ratio_floor=300_000)).files) == 2


def test_a_header_that_lies_about_the_size_is_refused() -> None:
    data = bytearray(zipped({"a.yaml": DEFINITION, "b.json": "0123456789"}, zipfile.ZIP_STORED))
    # lower b.json's declared size in its central directory entry: 10 -> 4
    central = data.rindex(b"PK\x01\x02")
    assert data[central + 24 : central + 28] == (10).to_bytes(4, "little")
    data[central + 24 : central + 28] = (4).to_bytes(4, "little")
    # the expansion stops at the declared size, so the content fails its checksum
    assert refusals(bytes(data)) == [
        ("bundle", "not a readable zip file (Bad CRC-32 for file 'b.json')")
    ]


def test_not_a_zip() -> None:
    ((path, message),) = refusals(b"id: x\n")
    assert (path, message.startswith("not a readable zip file")) == ("bundle", True)


def test_references_resolve_against_the_workflow_inside_the_bundle_only() -> None:
    files = {
        "flows/order.yaml": b"",
        "flows/specs/f.json": b"[]",
        "schemas/s.json": b"{}",
        "latin.json": "caf\u00e9".encode("latin-1"),
    }
    bundle = Bundle(workflow="flows/order.yaml", files=files)
    assert bundle.read("specs/f.json") == "[]"
    assert bundle.read("./specs/../specs/f.json") == "[]"
    assert bundle.read("../schemas/s.json") == "{}"  # up, but still inside
    assert bundle.read("classpath:schemas/s.json") == "{}"  # SonataFlow: from the root
    assert bundle.read("classpath:/schemas/s.json") == "{}"
    for outside in ("../../etc/passwd", "/etc/passwd", "file:///etc/passwd", "C:/x", "a\\b"):
        read = bundle.read(outside)
        assert isinstance(read, Unreadable)
        assert read.message.endswith("only files inside the bundle are read"), outside
    assert bundle.read("specs/none.json") == Unreadable(
        "cannot read 'specs/none.json': the bundle has no file 'flows/specs/none.json'"
    )
    assert bundle.read("../latin.json") == Unreadable(
        "cannot read '../latin.json': 'latin.json' is not UTF-8 text"
    )
