"""The demo services the examples call: pets over REST and GraphQL, products over OData.

``tideflow demo-services`` serves them on ``127.0.0.1:8081`` (not Tideflow's own
8080), where ``examples/workflows`` points; ``examples/README.md`` shows how to
run the examples under ``tideflow serve`` against them.

Each service is a small, self-contained stand-in with the answers the examples'
``NAME.output.json`` expect, whatever order the examples run in and however
often:

- ``/api/pets`` (REST, described by ``examples/workflows/apis/pets.yaml``) and
  ``/graphql`` each keep their own pets, starting from the same three; adding a
  pet whose name is already there answers that pet (its id stays the same), so
  a second run of an example gives the same output as the first.
- ``/api/flaky?key=K&failures=N&status=S`` fails its first ``N`` calls of key ``K``
  with ``S`` (503 by default), then answers ``{"attempts"}``; a key's count is
  forgotten once it succeeded, or after ``FLAKY_MEMORY`` seconds without a call.
- ``/api/echo`` answers what it was sent; ``/odata/Products`` reads four
  products (``$filter`` with ``eq``/``gt``, ``$orderby``, ``$top``, ``$skip``,
  ``$select``, ``$count``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import graphql
from fastapi import Body, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

FLAKY_MEMORY: Final = 10.0
"""Seconds after its last call that a flaky key's count is forgotten."""

_STARTING_PETS: Final[tuple[dict[str, Any], ...]] = (
    {"id": 1, "name": "Rex", "tag": "dog"},
    {"id": 2, "name": "Tom", "tag": "cat"},
    {"id": 3, "name": "Fido", "tag": "dog"},
)

_PRODUCTS: Final[tuple[dict[str, Any], ...]] = (
    {"ID": 1, "Name": "Bread", "Price": 2.5, "Category": "Food"},
    {"ID": 2, "Name": "Milk", "Price": 3.5, "Category": "Food"},
    {"ID": 3, "Name": "Lamp", "Price": 20.0, "Category": "Home"},
    {"ID": 4, "Name": "Chair", "Price": 45.0, "Category": "Home"},
)

GRAPHQL_SCHEMA: Final = """
type Pet { id: Int! name: String! tag: String }
input PetInput { name: String! tag: String }
type Query { pet(id: Int!): Pet  pets(tag: String, first: Int): [Pet!]! }
type Mutation { addPet(input: PetInput!): Pet! }
"""
"""The pets GraphQL service's schema (the tests' services share it)."""


@dataclass
class Pets:
    """One service's pets: the three starting ones, plus those added (by name, once)."""

    by_id: dict[int, dict[str, Any]] = field(
        default_factory=lambda: {p["id"]: dict(p) for p in _STARTING_PETS}
    )

    def add(self, pet: dict[str, Any]) -> dict[str, Any]:
        """The pet named ``pet["name"]`` if there is one, else ``pet`` stored with a new id."""
        for known in self.by_id.values():
            if known["name"] == pet.get("name"):
                return known
        created = {"id": max(self.by_id, default=0) + 1, "tag": None, **pet}
        self.by_id[created["id"]] = created
        return created

    def matching(self, tags: list[str]) -> list[dict[str, Any]]:
        """The pets with one of ``tags`` (every pet when ``tags`` is empty)."""
        return [p for p in self.by_id.values() if not tags or p["tag"] in tags]


@dataclass
class Flaky:
    """Call counts per key of ``/api/flaky``, each forgotten after a success or a quiet spell."""

    clock: Callable[[], float] = time.monotonic
    seen: dict[str, tuple[int, float]] = field(default_factory=dict)

    def call(self, key: str, failures: int) -> int | None:
        """This call's number for ``key``; ``None`` when it should fail."""
        now = self.clock()
        count, last = self.seen.get(key, (0, now))
        count = 1 if now - last > FLAKY_MEMORY else count + 1
        if count <= failures:
            self.seen[key] = (count, now)
            return None
        self.seen.pop(key, None)
        return count


def create_demo_app(clock: Callable[[], float] = time.monotonic) -> FastAPI:
    """The demo services as one ASGI app (``clock``: what the flaky key's memory counts on)."""
    app = FastAPI(title="Tideflow demo services", docs_url=None, redoc_url=None)
    _rest(app, Pets(), Flaky(clock))
    _graphql(app, Pets())
    _odata(app)
    return app


def _rest(app: FastAPI, pets: Pets, flaky: Flaky) -> None:
    @app.get("/api/pets")
    async def list_pets(request: Request, limit: int | None = None) -> list[dict[str, Any]]:
        found = pets.matching(request.query_params.getlist("tag"))
        return found[:limit] if limit is not None else found

    @app.post("/api/pets", status_code=201)
    async def create_pet(pet: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        if not isinstance(pet.get("name"), str):
            raise HTTPException(400, "a pet needs a name (a string)")
        return pets.add(pet)

    @app.get("/api/pets/{pet_id}")
    async def get_pet(pet_id: int) -> dict[str, Any]:
        if pet_id not in pets.by_id:
            raise HTTPException(404, f"no pet {pet_id}")
        return pets.by_id[pet_id]

    @app.get("/api/flaky")
    async def flaky_call(key: str, failures: int, status: int = 503) -> JSONResponse:
        attempts = flaky.call(key, failures)
        if attempts is None:
            return JSONResponse({"error": "try again"}, status_code=status)
        return JSONResponse({"attempts": attempts})

    @app.get("/api/echo")
    async def echo(request: Request) -> dict[str, Any]:
        return {"query": dict(request.query_params), "trace": request.headers.get("x-trace")}

    @app.post("/api/echo")
    async def echo_body(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise HTTPException(400, "the body is not JSON") from None
        return {"body": body, "query": dict(request.query_params)}


def _graphql(app: FastAPI, pets: Pets) -> None:
    schema = graphql.build_schema(GRAPHQL_SCHEMA)

    def pet(_: Any, __: Any, id: int) -> dict[str, Any] | None:
        return pets.by_id.get(id)

    def list_pets(_: Any, __: Any, tag: str | None = None, first: int | None = None) -> list[Any]:
        found = pets.matching([tag] if tag is not None else [])
        return found[:first] if first is not None else found

    def add_pet(_: Any, __: Any, input: dict[str, Any]) -> dict[str, Any]:
        return pets.add(input)

    schema.query_type.fields["pet"].resolve = pet  # type: ignore[union-attr]
    schema.query_type.fields["pets"].resolve = list_pets  # type: ignore[union-attr]
    schema.mutation_type.fields["addPet"].resolve = add_pet  # type: ignore[union-attr]

    @app.post("/graphql")
    async def run_graphql(payload: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        query = payload.get("query")
        if not isinstance(query, str):
            raise HTTPException(400, "a GraphQL request needs a 'query' (a string)")
        result = graphql.graphql_sync(schema, query, variable_values=payload.get("variables"))
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            out["errors"] = [{"message": e.message} for e in result.errors]
        return out


def _odata(app: FastAPI) -> None:
    @app.get("/odata/Products")
    async def collection(request: Request) -> dict[str, Any]:
        try:
            return products_answer(request.query_params)
        except (ValueError, KeyError) as exc:
            raise HTTPException(400, f"unsupported query: {exc}") from None

    @app.get("/odata/Products({key})")
    async def entity(key: int) -> dict[str, Any]:
        for product in _PRODUCTS:
            if product["ID"] == key:
                return dict(product)
        raise HTTPException(404, f"no product {key}")


def products_answer(q: Mapping[str, str]) -> dict[str, Any]:
    """The answer to ``GET /odata/Products`` with the query options ``q``.

    Raises:
        ValueError, KeyError: An option the service does not read.
    """
    found = query_products(
        q.get("$filter"), q.get("$orderby"), int(q.get("$skip", 0)), q.get("$top")
    )
    if "$select" in q:
        keep = q["$select"].split(",")
        found = [{k: p[k] for k in keep if k in p} for p in found]
    out: dict[str, Any] = {"value": found}
    if q.get("$count") == "true":
        out["@odata.count"] = len(found)
    return out


def query_products(
    where: str | None, order: str | None, skip: int, top: str | None
) -> list[dict[str, Any]]:
    """The products ``$filter`` (``Field eq 'text'``, ``Field gt number``), ``$orderby``,
    ``$skip`` and ``$top`` select."""
    found = [dict(p) for p in _PRODUCTS]
    if where:
        name, op, value = where.split(" ", 2)
        if op == "eq":
            found = [p for p in found if str(p[name]) == value.strip("'")]
        elif op == "gt":
            found = [p for p in found if p[name] > float(value)]
        else:
            raise ValueError(f"operator {op!r} (only eq and gt)")
    if order:
        key, _, direction = order.partition(" ")
        found.sort(key=lambda p: p[key], reverse=direction == "desc")
    found = found[skip:]
    return found[: int(top)] if top is not None else found
