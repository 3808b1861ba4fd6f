"""Secret grants (scope ``admin``): which workflow ids (or ``sink:<host>``) may receive
which secrets. Only names travel here; no route ever answers a secret's value.

The grants of the server's settings (``--grant-secret``,
``TIDEFLOW_SECRET_GRANTS``) are listed too, but only those made here can be
deleted. A grant takes effect for deploys at once; a workflow version already
loaded by a server keeps the values it was given until that server restarts
(see ``docs/security.md``, "Secrets").
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import Response

from tideflow.api import audit
from tideflow.api.access import requires
from tideflow.api.routes.events import json_response
from tideflow.api.schemas import CreateSecretGrant, Problem, SecretGrantList, SecretGrantOut
from tideflow.api.services import Services, get_services
from tideflow.auth.scopes import ADMIN
from tideflow.errors import ProtectedResource, SecretGrantNotFound
from tideflow.secrets import SecretAccess, make_grant
from tideflow.secrets.gateway import PostgresGrants

router = APIRouter(tags=["secrets"])

_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    code: {"model": Problem} for code in (400, 401, 403, 404, 409, 503)
}
Pattern = Annotated[str, Path(description="The grant's pattern (URL-encoded).")]
Services_ = Annotated[Services, Depends(get_services)]


def _access(services: Services) -> tuple[SecretAccess, PostgresGrants]:
    access = services.secrets
    if access is None or not isinstance(access.store, PostgresGrants):
        raise SecretGrantNotFound("this server keeps no secret grants")
    return access, access.store


@router.post(
    "/secrets/grants",
    status_code=201,
    response_model=SecretGrantOut,
    responses=_ERRORS,
    dependencies=[requires(ADMIN)],
    summary="Grant secrets",
)
async def create_grant(body: CreateSecretGrant, request: Request, services: Services_) -> Response:
    """Let subjects matching `pattern` receive `secrets` (replacing the names of an
    earlier grant made here with the same pattern)."""
    _, store = _access(services)
    grant = make_grant(body.pattern, body.secrets)
    await store.put(grant, services.clock.now())
    target = f"/secrets/grants/{grant.pattern}"
    await audit.record(request, "secret.granted", target, secrets=list(grant.names))
    return json_response({**grant.to_json(), "origin": "api"}, 201)


@router.get(
    "/secrets/grants",
    response_model=SecretGrantList,
    responses=_ERRORS,
    dependencies=[requires(ADMIN)],
    summary="List secret grants",
)
async def list_grants(services: Services_) -> Response:
    """The grants of the server's settings, then those made through the API."""
    access, store = _access(services)
    fixed = [{**g.to_json(), "origin": "settings"} for g in access.fixed]
    stored = [{**g.to_json(), "origin": "api"} for g in await store.list()]
    return json_response({"grants": [*fixed, *stored]})


@router.delete(
    "/secrets/grants/{pattern}",
    status_code=204,
    responses=_ERRORS,
    dependencies=[requires(ADMIN)],
    summary="Revoke a secret grant",
)
async def delete_grant(pattern: Pattern, request: Request, services: Services_) -> Response:
    """Forget the grant made through the API for `pattern`."""
    access, store = _access(services)
    try:
        await store.delete(pattern)
    except SecretGrantNotFound:
        if any(g.pattern == pattern for g in access.fixed):
            raise ProtectedResource(
                f"the grant {pattern!r} is set by the server's settings (--grant-secret, "
                "TIDEFLOW_SECRET_GRANTS): change them and restart"
            ) from None
        raise
    await audit.record(request, "secret.revoked", f"/secrets/grants/{pattern}")
    return Response(status_code=204)
