"""The CloudEvents conformance cases, sent through the real HTTP server to real PostgreSQL.

Cases come from ``../shared/conformance/cloudevents/http-conformance/``: the
event YAML files (``yaml/v1.yaml``, ``yaml/v1.0/*.yaml``; no ``Mode`` means
binary, as in the upstream tool) and the scenario outlines of
``features/http-protocol-binding.feature``. Each case is turned into an HTTP
request the way a conforming sender would (binary-mode header values
percent-encoded), posted to ``/events``, read back by offset and compared.
The CloudEvents 0.3 cases must be refused: Tideflow accepts 1.0 only.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import yaml

from tests.support.auth import admin_tokens, bearer
from tests.support.conformance import CLOUDEVENTS, needs
from tideflow.api.app import create_app
from tideflow.api.services import with_store
from tideflow.api.testserver import serve_app
from tideflow.eventstore.gateway import PostgresEventStore
from tideflow.http_binding import encode_header_value, parse_media_type
from tideflow.settings import Settings

CONFORMANCE = CLOUDEVENTS / "http-conformance"
pytestmark = needs(CONFORMANCE)


@dataclass(frozen=True)
class Case:
    """One request to send and what the stored event must hold."""

    name: str
    headers: dict[str, str]
    body: bytes
    attributes: dict[str, str]
    data: Any = None
    """The expected ``data`` (structured mode and feature cases)."""
    binary_body: bytes | None = None
    """The data sent as the body in binary mode, to compare with what was stored."""


def yaml_cases(*relative: str) -> list[Case]:
    cases = []
    for rel in relative:
        path = CONFORMANCE / "yaml" / rel
        if not path.is_file():
            continue
        docs = yaml.load_all(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
        for number, doc in enumerate(d for d in docs if d):
            cases.append(yaml_case(f"{rel}#{number}", doc))
    return cases


def yaml_case(name: str, doc: dict[str, Any]) -> Case:
    attributes = dict(doc["ContextAttributes"])
    extensions = dict(attributes.pop("Extensions", None) or {})
    transport = dict(doc.get("TransportExtensions") or {})
    data: str | None = doc.get("Data")
    content_type = attributes.get("datacontenttype")
    is_json = content_type is None or parse_media_type(content_type).is_json
    expected = {**attributes, **extensions}
    if doc.get("Mode", "binary") == "structured":
        event: dict[str, Any] = dict(expected)
        if data is not None:
            event["data"] = orjson.loads(data) if is_json else data
        headers = {**transport, "content-type": "application/cloudevents+json"}
        return Case(name, headers, orjson.dumps(event), expected, event.get("data"))
    headers = {
        f"ce-{k}": encode_header_value(v) for k, v in expected.items() if k != "datacontenttype"
    }
    headers.update(transport)
    if content_type:
        headers["content-type"] = content_type
    body = (data or "").encode("utf-8")
    return Case(name, headers, body, expected, binary_body=body)


def feature_cases() -> list[Case]:
    path = CONFORMANCE / "features" / "http-protocol-binding.feature"
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    cases = []
    for outline in text.split("Scenario Outline:")[1:]:
        title = outline.splitlines()[0].strip()
        request, data_json = re.findall(r'"""\n(.*?)\n\s*"""', outline, re.DOTALL)
        attributes = table(outline.split("Then the attributes are:")[1].split("And")[0])
        for example in table(outline.split("Examples:")[1]):
            cases.append(feature_case(title, request, attributes, data_json, example))
    return cases


def table(text: str) -> list[dict[str, str]]:
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.strip().startswith("|")
    ]
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def substitute(text: str, example: dict[str, str]) -> str:
    for key, value in example.items():
        text = text.replace(f"<{key}>", value)
    return text


def feature_case(
    title: str, request: str, attributes: list[dict[str, str]], data: str, example: dict[str, str]
) -> Case:
    lines = [line.strip() for line in substitute(request, example).splitlines()]
    blank = lines.index("")
    headers = {}
    for line in lines[1:blank]:  # lines[0] is the request line
        name, _, value = line.partition(":")
        if name.lower() not in ("host", "content-length"):  # recomputed by the client
            headers[name.strip()] = value.strip()
    body = "\n".join(lines[blank + 1 :]).encode("utf-8")
    expected = {row["key"]: substitute(row["value"], example) for row in attributes}
    name = substitute(title, example)
    return Case(name, headers, body, expected, orjson.loads(data))


V1_CASES = yaml_cases("v1.yaml", "v1.0/v1_minimum.yaml") + feature_cases()
V03_CASES = yaml_cases("v03.yaml", "v0.3/v03_minimum.yaml")


@pytest.fixture
async def client(pool: Any) -> AsyncIterator[httpx.AsyncClient]:
    tokens, token = admin_tokens()
    app = create_app(Settings(), with_store(PostgresEventStore(pool), tokens=tokens))
    async with (
        serve_app(app) as url,
        httpx.AsyncClient(base_url=url, timeout=30, headers=bearer(token)) as http,
    ):
        yield http


def test_the_cases_were_found() -> None:
    assert len(V1_CASES) == 12  # 2 + 6 YAML events, 2 outlines x 2 examples
    assert len(V03_CASES) == 7


@pytest.mark.parametrize("case", V1_CASES, ids=lambda case: case.name)
async def test_cloudevents_1_0_case(client: httpx.AsyncClient, case: Case) -> None:
    response = await client.post("/events", headers=case.headers, content=case.body)
    assert response.status_code == 202, response.text
    [ack] = response.json()["events"]
    stored = (await client.get(f"/buses/default/events/{ack['offset']}")).json()["event"]
    for name, value in case.attributes.items():
        assert stored[name] == value, name
    if case.binary_body is None:
        assert stored["data"] == case.data
    else:
        assert_same_data(stored, case.binary_body)
    assert "user-agent" not in stored  # transport headers are not attributes


def assert_same_data(event: dict[str, Any], body: bytes) -> None:
    """Binary-mode data kept as JSON (JSON types), text (text types) or exact bytes."""
    media = parse_media_type(event.get("datacontenttype", "application/octet-stream"))
    if media.is_json:
        assert event["data"] == orjson.loads(body)
    elif media.is_text:
        assert event["data"] == body.decode("utf-8")
    else:
        assert base64.b64decode(event["data_base64"]) == body


@pytest.mark.parametrize("case", V03_CASES, ids=lambda case: case.name)
async def test_cloudevents_0_3_cases_are_refused(client: httpx.AsyncClient, case: Case) -> None:
    response = await client.post("/events", headers=case.headers, content=case.body)
    assert response.status_code == 400, response.text
    assert response.json()["path"] == "specversion"
