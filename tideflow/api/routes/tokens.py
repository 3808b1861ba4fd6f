"""API tokens (scope ``admin``): create (the text shown once), list, revoke.

A revoked token is refused at once by the server that revoked it and within
the verifier's cache time (5 s) by other servers on the same database.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import Response

from tideflow.api import audit
from tideflow.api.access import AccessPolicy, requires
from tideflow.api.routes.events import json_response
from tideflow.api.schemas import CreateToken, Problem, TokenCreated, TokenList
from tideflow.api.services import Services, get_services
from tideflow.auth.scopes import ADMIN
from tideflow.auth.tokens import issue
from tideflow.auth.verifier import TokenStore
from tideflow.errors import StoreError

router = APIRouter(tags=["tokens"])

_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    code: {"model": Problem} for code in (400, 401, 403, 404, 503)
}
TokenId = Annotated[str, Path(description="The token's public id.")]
Services_ = Annotated[Services, Depends(get_services)]


def _tokens(services: Services) -> TokenStore:
    if services.tokens is None:
        raise StoreError("this server has no token store")
    return services.tokens


@router.post(
    "/tokens",
    status_code=201,
    response_model=TokenCreated,
    responses=_ERRORS,
    dependencies=[requires(ADMIN)],
    summary="Create a token",
)
async def create_token(body: CreateToken, request: Request, services: Services_) -> Response:
    """Make a token with a name and scopes; its text is in `token`, shown this once."""
    issued = issue(body.name, body.scopes, services.clock.now(), body.rate)
    await _tokens(services).create(issued.record)
    made = issued.record
    await audit.record(
        request,
        "token.created",
        f"/tokens/{made.id}",
        tokenId=made.id,
        name=made.name,
        scopes=list(made.scopes),
        rate=made.rate,
    )
    response = json_response({**issued.record.to_json(), "token": issued.text}, 201)
    response.headers["location"] = f"/tokens/{issued.record.id}"
    return response


@router.get(
    "/tokens",
    response_model=TokenList,
    responses=_ERRORS,
    dependencies=[requires(ADMIN)],
    summary="List tokens",
)
async def list_tokens(services: Services_) -> Response:
    """Every token with its name, scopes and dates (never its text), oldest first."""
    found = await _tokens(services).list()
    return json_response({"tokens": [record.to_json() for record in found]})


@router.delete(
    "/tokens/{token_id}",
    status_code=204,
    responses=_ERRORS,
    dependencies=[requires(ADMIN)],
    summary="Revoke a token",
)
async def revoke_token(token_id: TokenId, request: Request, services: Services_) -> Response:
    """Revoke a token: it is refused from now on (it stays listed, with `revokedAt`)."""
    revoked = await _tokens(services).revoke(token_id, services.clock.now())
    await audit.record(
        request, "token.revoked", f"/tokens/{revoked.id}", tokenId=revoked.id, name=revoked.name
    )
    access: AccessPolicy = request.app.state.access
    if access.verifier is not None:
        access.verifier.forget(token_id)
    return Response(status_code=204)
