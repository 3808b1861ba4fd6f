"""Local stand-ins for the public services the DSL 1.0 CTK and examples call.

``petstore.swagger.io`` (the Swagger 2.0 pet store: its document, pets by
status, a pet by id, 404 for anything else, updates), ``httpbin.org`` (basic
authentication), ``swapi.dev`` (people, search, planets) and the examples'
made-up services (a hospital's alerts, a casino's bets, a backup service)
answer what the scenarios rely on. One app serves them all (their paths do
not collide); :func:`start_stand_ins` yields the redirects of their origins.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs

from fastapi import Body, FastAPI, Header, HTTPException, Query, Request

from tests.support.services import serve_in_thread

PUBLIC = (
    "https://petstore.swagger.io",
    "https://httpbin.org",
    "https://swapi.dev",
    "https://fake-hospital.com",
    "https://superbet-casinos.com",
    "https://example.com",
    "https://hospital.example.com",
    "https://virtual-wf-powered-race.com",
    "http://keycloak",
    "https://fake.com",
)
TOKEN = "sw1-token"
KNOWN_BEARERS = ("Bearer t", f"Bearer {TOKEN}")
PROTECTED = ("10", "11")
"""Pets shown only with a token of the stand-in OAuth2/OIDC authority (``keycloak``)."""
LUKE = {"name": "Luke Skywalker", "homeworld": "https://swapi.dev/api/planets/1/"}

SWAGGER: dict[str, Any] = {
    "swagger": "2.0",
    "info": {"title": "Swagger Petstore (stand-in)", "version": "1.0.7"},
    "host": "petstore.swagger.io",
    "basePath": "/v2",
    "schemes": ["https", "http"],
    "paths": {
        "/pet/findByStatus": {
            "get": {
                "operationId": "findPetsByStatus",
                "parameters": [
                    {"name": "status", "in": "query", "required": True, "type": "array",
                     "items": {"type": "string"}, "collectionFormat": "multi"},
                ],
                "responses": {"200": {"description": "successful operation"}},
            }
        },
        "/pet/{petId}": {
            "get": {
                "operationId": "getPetById",
                "parameters": [
                    {"name": "petId", "in": "path", "required": True, "type": "integer"},
                ],
                "responses": {"200": {"description": "successful operation"}},
            }
        },
    },
}  # fmt: skip


def _pet(pet_id: int, status: str = "available") -> dict[str, Any]:
    return {
        "id": pet_id,
        "category": {"id": 1, "name": "dogs"},
        "name": f"doggie-{pet_id}",
        "photoUrls": [],
        "tags": [],
        "status": status,
    }


def create_app() -> FastAPI:
    """The stand-in app."""
    app = FastAPI()

    @app.get("/v2/swagger.json")
    async def swagger() -> dict[str, Any]:
        return SWAGGER

    @app.get("/v2/pet/findByStatus")
    async def by_status(status: list[str] = Query(...)) -> list[dict[str, Any]]:  # noqa: B008
        return [_pet(i, status[0]) for i in (1, 2, 3)]

    @app.get("/v2/pet/{pet_id}")
    async def by_id(pet_id: str, authorization: str = Header("")) -> dict[str, Any]:
        if authorization.startswith("Bearer ") and authorization not in KNOWN_BEARERS:
            raise HTTPException(401, "unknown token")
        if pet_id in PROTECTED and authorization != f"Bearer {TOKEN}":
            raise HTTPException(401, "this pet needs a token of the stand-in authority")
        if not pet_id.isdigit():
            raise HTTPException(404, "Pet not found")
        return _pet(int(pet_id))

    @app.put("/v2/pet/{pet_id}")
    async def update(pet_id: str, pet: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        return pet

    _other_routes(app)

    @app.get("/basic-auth/{user}/{password}")
    async def basic(user: str, password: str, authorization: str = Header("")) -> dict[str, Any]:
        expected = base64.b64encode(f"{user}:{password}".encode()).decode()
        if authorization != f"Basic {expected}":
            raise HTTPException(401, "unauthorized")
        return {"authenticated": True, "user": user}

    return app


def _token_routes(app: FastAPI) -> None:
    realm = "/realms/fake-authority"

    async def token(request: Request) -> dict[str, Any]:
        form = parse_qs((await request.body()).decode())
        if form.get("client_secret") != ["workflow-runtime-secret"]:
            raise HTTPException(401, "invalid_client")
        return {"access_token": TOKEN, "expires_in": 300}

    app.post(f"{realm}/auth/token")(token)
    app.post(f"{realm}/oauth2/token")(token)  # the 1.0 default token endpoint
    app.post(f"{realm}/protocol/openid-connect/token")(token)

    @app.get(f"{realm}/.well-known/openid-configuration")
    async def discovery() -> dict[str, Any]:
        return {"token_endpoint": f"http://keycloak{realm}/protocol/openid-connect/token"}


def _other_routes(app: FastAPI) -> None:
    _token_routes(app)

    @app.get("/api/people/")
    async def search(search: str = "") -> dict[str, Any]:
        found = [LUKE] if search.lower() in LUKE["name"].lower() else []
        return {"count": len(found), "next": None, "previous": None, "results": found}

    @app.get("/api/people/{person}")
    async def person(person: int) -> dict[str, Any]:
        if person != 1:
            raise HTTPException(404, "Not found")
        return LUKE

    @app.get("/api/planets/{planet}/")
    async def planet(planet: int) -> dict[str, Any]:
        return {"name": "Tatooine", "climate": "arid"}

    @app.put("/api/v3/alert/{who}")
    async def alert(who: str, body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        return {"alerted": who, **body}

    @app.post("/api/bet/on/football")
    async def bet(body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        return {"placed": True}

    @app.post("/api/v1/notify")
    async def notify(body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        return {"notified": body["patientName"]}

    @app.post("/api/v4/cars/{car}/start")
    async def start(car: str) -> dict[str, Any]:
        return {"car": car, "started": True}

    @app.get("/sample")
    async def sample() -> dict[str, Any]:
        return {"sample": True}

    @app.post("/api/v1/backup/start")
    async def backup() -> dict[str, Any]:
        return {"started": True}


@contextmanager
def start_stand_ins() -> Iterator[dict[str, str]]:
    """Serve the stand-ins on a free port; yield the redirects (public origin -> local)."""
    with serve_in_thread(create_app(), "the stand-in services") as base:
        yield dict.fromkeys(PUBLIC, base)
