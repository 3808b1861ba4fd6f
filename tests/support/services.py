"""One FastAPI app that plays REST (OpenAPI), GraphQL, OData and OAuth2 services.

Started by :func:`start_services` with uvicorn on a free port of 127.0.0.1 in
a background thread, so both in-process tests and ``tideflow run``
subprocesses can reach it.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import graphql
import uvicorn
from fastapi import Body, FastAPI, Header, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from tideflow.demo import GRAPHQL_SCHEMA, products_answer, query_products

HERE = Path(__file__).resolve().parent
PETS_DOC = HERE / "pets.yaml"

CLIENT_ID, CLIENT_SECRET, BEARER = "tideflow", "s3cret", "static-token"

_SCHEMA = graphql.build_schema(GRAPHQL_SCHEMA)


@dataclass
class ServiceState:
    """What the services hold and what they saw (tests read it)."""

    pets: dict[int, dict[str, Any]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    idempotency: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens_issued: int = 0
    keyed: list[tuple[str, str | None]] = field(default_factory=list)
    """``(tag, Idempotency-Key)`` of every ``/api/keyed`` request, in arrival order."""

    def reset(self) -> None:
        """Back to the three starting pets and no history."""
        self.pets = {
            1: {"id": 1, "name": "Rex", "tag": "dog"},
            2: {"id": 2, "name": "Tom", "tag": "cat"},
            3: {"id": 3, "name": "Fido", "tag": "dog"},
        }
        self.calls.clear()
        self.idempotency.clear()
        self.tokens_issued = 0
        self.keyed.clear()


def create_app(state: ServiceState) -> FastAPI:
    """The app; routes read and change ``state``."""
    app = FastAPI()
    _rest_routes(app, state)
    _misc_routes(app, state)
    _auth_routes(app, state)
    _graphql_route(app, state)
    _odata_routes(app, state)
    return app


def _rest_routes(app: FastAPI, state: ServiceState) -> None:
    @app.get("/openapi/pets.yaml")
    async def pets_doc() -> Response:
        return Response(PETS_DOC.read_text(), media_type="application/yaml")

    @app.get("/private/pets.yaml")
    async def private_doc(authorization: str | None = Header(None)) -> Response:
        if not authorization:
            raise HTTPException(401, "the document needs credentials")
        return Response(PETS_DOC.read_text(), media_type="application/yaml")

    @app.get("/api/pets")
    async def list_pets(request: Request, limit: int | None = None) -> list[dict[str, Any]]:
        tags = request.query_params.getlist("tag")
        found = [p for p in state.pets.values() if not tags or p["tag"] in tags]
        return found[:limit] if limit is not None else found

    @app.post("/api/pets", status_code=201)
    async def create_pet(
        pet: dict[str, Any] = Body(...),  # noqa: B008
        idempotency_key: str | None = Header(None),
    ) -> dict[str, Any]:
        if idempotency_key and idempotency_key in state.idempotency:
            return state.idempotency[idempotency_key]
        created = {"id": max(state.pets, default=0) + 1, **pet}
        state.pets[created["id"]] = created
        if idempotency_key:
            state.idempotency[idempotency_key] = created
        return created

    @app.get("/api/pets/{pet_id}")
    async def get_pet(
        pet_id: int, verbose: bool = False, x_request_id: str | None = Header(None)
    ) -> dict[str, Any]:
        if pet_id not in state.pets:
            raise HTTPException(404, f"no pet {pet_id}")
        pet = dict(state.pets[pet_id])
        if verbose:
            pet["requestId"] = x_request_id
        return pet

    @app.put("/api/pets/{pet_id}")
    async def update_pet(pet_id: int, body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        state.pets[pet_id] = {"id": pet_id, **body}
        return state.pets[pet_id]


def _misc_routes(app: FastAPI, state: ServiceState) -> None:
    @app.get("/api/flaky")
    async def flaky(key: str, failures: int, status: int = 503) -> JSONResponse:
        seen = state.calls[key] = state.calls.get(key, 0) + 1
        if seen <= failures:
            return JSONResponse({"error": "try again"}, status_code=status)
        return JSONResponse({"attempts": seen})

    @app.get("/api/keyed")
    async def keyed(
        tag: str, failures: int = 0, idempotency_key: str | None = Header(None)
    ) -> JSONResponse:
        # Fails the first `failures` requests of each tag; records every key it is sent.
        state.keyed.append((tag, idempotency_key))
        seen = sum(1 for t, _ in state.keyed if t == tag)
        if seen <= failures:
            return JSONResponse({"error": "try again"}, status_code=503)
        return JSONResponse({"tag": tag, "attempts": seen, "key": idempotency_key})

    @app.get("/api/echo")
    async def echo(request: Request) -> dict[str, Any]:
        return {
            "query": dict(request.query_params),
            "trace": request.headers.get("x-trace"),
            "session": request.cookies.get("session"),
            "idempotencyKey": request.headers.get("idempotency-key"),
        }

    @app.post("/api/echo")
    async def echo_body(request: Request) -> dict[str, Any]:
        return {"body": await request.json(), "query": dict(request.query_params)}

    @app.get("/api/slow")
    async def slow(seconds: float) -> dict[str, Any]:
        await asyncio.sleep(seconds)
        return {"slept": seconds}


def _auth_routes(app: FastAPI, state: ServiceState) -> None:
    @app.get("/api/secure")
    async def secure(authorization: str | None = Header(None)) -> dict[str, Any]:
        if authorization in (None, ""):
            raise HTTPException(401, "no credentials")
        return {"authorization": authorization}

    @app.get("/.well-known/openid-configuration")
    async def discovery(request: Request) -> dict[str, Any]:
        return {"token_endpoint": str(request.base_url) + "oauth/token"}

    @app.post("/oauth/token")
    async def token(request: Request) -> JSONResponse:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "client_credentials" or (
            form.get("client_id"),
            form.get("client_secret"),
        ) != (CLIENT_ID, CLIENT_SECRET):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        state.tokens_issued += 1
        return JSONResponse(
            {
                "access_token": f"tok-{state.tokens_issued}",
                "expires_in": 3600,
                "scope": form.get("scope"),
            }
        )


def _graphql_route(app: FastAPI, state: ServiceState) -> None:
    def pet(_: Any, __: Any, id: int) -> dict[str, Any] | None:
        return state.pets.get(id)

    def pets(_: Any, __: Any, tag: str | None = None, first: int | None = None) -> list[Any]:
        found = [p for p in state.pets.values() if tag is None or p["tag"] == tag]
        return found[:first] if first is not None else found

    def add_pet(_: Any, __: Any, input: dict[str, Any]) -> dict[str, Any]:
        created = {"id": max(state.pets, default=0) + 1, "tag": None, **input}
        state.pets[created["id"]] = created
        return created

    _SCHEMA.query_type.fields["pet"].resolve = pet  # type: ignore[union-attr]
    _SCHEMA.query_type.fields["pets"].resolve = pets  # type: ignore[union-attr]
    _SCHEMA.mutation_type.fields["addPet"].resolve = add_pet  # type: ignore[union-attr]

    @app.post("/graphql")
    async def run_graphql(payload: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        result = graphql.graphql_sync(
            _SCHEMA, payload["query"], variable_values=payload.get("variables")
        )
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            out["errors"] = [{"message": e.message} for e in result.errors]
        return out


def _odata_routes(app: FastAPI, state: ServiceState) -> None:
    @app.get("/odata/Products")
    async def collection(request: Request) -> dict[str, Any]:
        return products_answer(request.query_params)

    @app.get("/odata/Products({key})")
    async def entity(key: int) -> dict[str, Any]:
        for product in query_products(f"ID eq {key}", None, 0, None):
            return product
        raise HTTPException(404, f"no product {key}")


@dataclass
class Services:
    """A running instance of the services."""

    base_url: str
    state: ServiceState

    @property
    def pets_doc_url(self) -> str:
        """URL of the pets OpenAPI document (its server is relative: ``/api``)."""
        return f"{self.base_url}/openapi/pets.yaml"


@contextmanager
def serve_in_thread(app: Any, what: str = "test services") -> Iterator[str]:
    """Serve an ASGI app on a free port of 127.0.0.1 until the block ends; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        threading.Event().wait(0.01)
    else:
        raise RuntimeError(f"{what} did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()


@contextmanager
def start_services() -> Iterator[Services]:
    """Run the services on a free port of 127.0.0.1 until the block ends."""
    state = ServiceState()
    state.reset()
    with serve_in_thread(create_app(state)) as base:
        yield Services(base, state)
