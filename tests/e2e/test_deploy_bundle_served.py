"""A definition deployed over HTTP with its files: a zip bundle (issue 17).

A real server (uvicorn on 127.0.0.1, the app's own lifespan) on a fresh
PostgreSQL database. The bundle's relative references (a functions file, a
``dataInputSchema`` and the sibling schema it ``$ref`` s) resolve inside the
bundle and are stored with the version; a reference leaving the bundle reads
nothing of the server's; a refused bundle is a 422 naming the offending path.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.auth import home_auth
from tests.support.cli import run_cli
from tests.support.refserver import ref_server
from tideflow.api.app import create_app
from tideflow.api.testserver import serve_app
from tideflow.auth.first_token import read_token_file
from tideflow.serve import open_system
from tideflow.settings import Settings

ORDER = """\
id: order
version: "1"
specVersion: "0.8"
start: Total
dataInputSchema: schemas/order.json
functions: specs/functions.json
states:
  - name: Total
    type: operation
    actions:
      - functionRef: total
        actionDataFilter:
          toStateData: .total
    end: true
"""
FILES = {
    "order.sw.yaml": ORDER,
    "specs/functions.json": json.dumps(
        {"functions": [{"name": "total", "type": "expression", "operation": ".qty * .price"}]}
    ),
    "schemas/order.json": json.dumps(
        {
            "type": "object",
            "required": ["customer", "qty", "price"],
            "properties": {"customer": {"$ref": "customer.json"}},
        }
    ),
    "schemas/customer.json": json.dumps(
        {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
    ),
    "README.md": "not a definition: left alone",
}


ZIP = {"content-type": "application/zip"}


def zipped(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.fixture
async def served(pg_url: str, tmp_path: Path) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    settings = Settings(database_url=pg_url, home=tmp_path, egress_allow=("127.0.0.1",))
    app = create_app(settings, open_system)
    async with (
        serve_app(app) as url,
        httpx.AsyncClient(base_url=url, timeout=30, headers=home_auth(tmp_path)) as http,
    ):
        yield url, http


async def test_a_bundle_deploys_with_its_files_and_runs_them(
    served: tuple[str, httpx.AsyncClient],
) -> None:
    _, client = served
    deployed = await client.post("/workflows", content=zipped(FILES), headers=ZIP)
    assert deployed.status_code == 201, deployed.text
    assert deployed.json()["id"] == "order"
    good = {"customer": {"name": "Ada"}, "qty": 3, "price": 5}
    ran = await client.post("/workflows/order/instances", json=good, params={"wait": 20})
    assert ran.status_code == 201, ran.text
    assert ran.json()["status"] == "completed", ran.json()
    assert ran.json()["output"]["total"] == 15  # the functions file from the bundle
    # the sibling schema from the bundle applies: customer.name is required
    bad = {"customer": {}, "qty": 3, "price": 5}
    faulted = await client.post("/workflows/order/instances", json=bad, params={"wait": 20})
    assert faulted.json()["status"] == "failed", faulted.text
    assert "'name' is a required property" in json.dumps(faulted.json()["error"])
    source = await client.get("/workflows/order/versions/1")
    assert source.text == ORDER  # the definition as submitted, out of the bundle


REFERENCES_OUTSIDE = [
    ("../outside.json", "only files inside the bundle are read"),
    ("/etc/hostname", "only files inside the bundle are read"),
    ("file:///etc/hostname", "only files inside the bundle are read"),
    ("specs/missing.json", "the bundle has no file 'specs/missing.json'"),
]


async def test_a_reference_resolves_only_inside_the_bundle(
    served: tuple[str, httpx.AsyncClient],
) -> None:
    _, client = served
    for reference, why in REFERENCES_OUTSIDE:  # one server for every case
        files = {**FILES, "order.sw.yaml": ORDER.replace("specs/functions.json", reference)}
        deployed = await client.post("/workflows", content=zipped(files), headers=ZIP)
        assert deployed.status_code == 422, deployed.text
        (error,) = deployed.json()["errors"]
        assert (error["path"], why in error["message"]) == ("functions", True), (reference, error)


PRICED = """\
id: priced
version: "1"
specVersion: "0.8"
start: Price
functions:
  - name: getPrice
    type: rest
    operation: specs/prices.yaml#getPrice
states:
  - name: Price
    type: operation
    actions:
      - functionRef:
          refName: getPrice
          arguments:
            item: "${ .item }"
        actionDataFilter:
          toStateData: .price
    end: true
"""


def prices_spec(url: str) -> str:
    return f"""\
openapi: 3.0.3
info: {{title: prices, version: "1"}}
servers:
  - url: {url}
paths:
  /prices/{{item}}:
    get:
      operationId: getPrice
      parameters:
        - {{name: item, in: path, required: true, schema: {{type: string}}}}
      responses:
        "200": {{description: the price}}
"""


async def test_a_bundled_openapi_document_is_stored_and_called(
    served: tuple[str, httpx.AsyncClient],
) -> None:
    _, client = served
    async with ref_server() as api:
        api.documents["/prices/apple"] = json.dumps({"amount": 3})
        files = {"priced.sw.yaml": PRICED, "specs/prices.yaml": prices_spec(api.url)}
        deployed = await client.post("/workflows", content=zipped(files), headers=ZIP)
        assert deployed.status_code == 201, deployed.text
        ran = await client.post(
            "/workflows/priced/instances", json={"item": "apple"}, params={"wait": 20}
        )
    assert ran.json()["status"] == "completed", ran.text
    assert ran.json()["output"]["price"] == {"amount": 3}
    assert api.requests == ["/prices/apple"]  # the document came from the bundle, not fetched


async def test_a_function_document_outside_the_bundle_is_refused(
    served: tuple[str, httpx.AsyncClient],
) -> None:
    _, client = served
    cases = [
        ("specs/missing.yaml#getPrice", "the bundle has no file 'specs/missing.yaml'"),
        ("../prices.yaml#getPrice", "only files inside the bundle are read"),
        ("greeter.proto#Greeter#SayHello", "a proto file in a bundle is not run yet"),
    ]
    for operation, why in cases:
        text = PRICED.replace("specs/prices.yaml#getPrice", operation)
        if operation.startswith("greeter"):
            text = text.replace("type: rest", "type: rpc")
        files = {"priced.sw.yaml": text, "specs/prices.yaml": prices_spec("http://127.0.0.1:9")}
        refused = await client.post("/workflows", content=zipped(files), headers=ZIP)
        assert refused.status_code == 422, refused.text
        (error,) = refused.json()["errors"]
        assert (error["path"], why in error["message"]) == ("functions[0].operation", True), error


async def test_the_bundle_files_key_is_reserved(served: tuple[str, httpx.AsyncClient]) -> None:
    _, client = served
    text = ORDER + '$tideflowFiles: {"specs/x.yaml": "openapi: 3.0.3"}\n'
    refused = await client.post(
        "/workflows", content=text, headers={"content-type": "application/yaml"}
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["path"] == "$tideflowFiles"


def raw_zip(name: str, content: bytes = b"{}", *, mode: int | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("order.sw.yaml", ORDER.replace("functions: specs/functions.json\n", ""))
        entry = zipfile.ZipInfo(name)
        if mode is not None:
            entry.external_attr = mode << 16
        archive.writestr(entry, content)
    return buffer.getvalue()


REFUSED_BUNDLES = [
    (raw_zip("../escape.json"), "bundle.../escape.json", "'..'"),
    (raw_zip("/etc/cron.d/x"), "bundle./etc/cron.d/x", "absolute path"),
    (raw_zip("link.json", b"/etc/passwd", mode=0o120777), "bundle.link.json", "symbolic link"),
    (b"PK\x03\x04 not really a zip", "bundle", "not a readable zip file"),
]


async def test_a_refused_bundle_is_a_422_with_the_path(
    served: tuple[str, httpx.AsyncClient],
) -> None:
    _, client = served
    for body, path, why in REFUSED_BUNDLES:
        refused = await client.post("/workflows", content=body, headers=ZIP)
        assert refused.status_code == 422, refused.text
        (error,) = refused.json()["errors"]
        assert (error["path"], why in error["message"]) == (path, True), error
    listed = await client.get("/workflows")
    assert listed.json()["workflows"] == []


async def test_a_zip_bomb_is_refused_before_it_is_expanded(
    served: tuple[str, httpx.AsyncClient],
) -> None:
    _, client = served
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("order.sw.yaml", ORDER)
        archive.writestr("zeros.json", b"0" * (8 * 1024 * 1024))  # ~8 KiB compressed
    refused = await client.post("/workflows", content=buffer.getvalue(), headers=ZIP)
    assert refused.status_code == 422, refused.text
    (error,) = refused.json()["errors"]
    assert error["path"] == "bundle.zeros.json"
    assert "zip bomb" in error["message"]


async def test_the_cli_deploys_a_folder_as_a_bundle(
    served: tuple[str, httpx.AsyncClient], tmp_path: Path
) -> None:
    url, client = served
    folder = tmp_path / "project"
    for name, text in FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    token = read_token_file(tmp_path)
    code, out, err = await run_cli(url, "workflows", "deploy", str(folder), token=token)
    assert code == 0, err
    assert out.split() == ["order", "1"]
    ran = await client.post(
        "/workflows/order/instances",
        json={"customer": {"name": "Ada"}, "qty": 2, "price": 4},
        params={"wait": 20},
    )
    assert ran.json()["output"]["total"] == 8, ran.text
