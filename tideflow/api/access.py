"""Who may call what: the access gate in front of every route, and route scopes.

:class:`AccessGate` is the outermost ASGI middleware (before the ingestion
fast path). For every request but the public ones (``/healthz``,
``/readyz``, the OpenAPI document and its pages) it checks, in order, the
``Host`` (421), the ``Origin`` (403), the bearer token (401: a Tideflow
token, or a JWT of the configured OIDC issuer, :mod:`tideflow.auth.oidc`), the token's
rate limit (429 with ``Retry-After``, :mod:`tideflow.auth.rates`) and, for a
state-changing request with a body, its content type (415) -- see
:mod:`tideflow.auth.hygiene` -- and puts the token's
:class:`~tideflow.auth.tokens.Principal` on the request. Each route then
declares the scope it needs with :func:`requires`; a token without it gets
403. With ``--insecure-local`` (loopback only) no token is needed: every
request acts as an admin, and the Host, Origin and content-type checks are
then the whole CSRF defence.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from fastapi import Depends, Request

from tideflow.api.errors import PROBLEM_JSON, tideflow_error_response
from tideflow.auth.hygiene import (
    check_content_type,
    check_host,
    check_origin,
    is_loopback,
    server_names,
)
from tideflow.auth.jwks import IssuerKeys
from tideflow.auth.oidc import JwtVerifier, OidcConfig, looks_like_jwt
from tideflow.auth.rates import Rate, RateLimiter, retry_after
from tideflow.auth.scopes import AUDIT_BUS, server_only
from tideflow.auth.tokens import INSECURE_LOCAL, Principal
from tideflow.auth.verifier import BAD_TOKEN, TokenVerifier
from tideflow.errors import (
    AuthenticationRequired,
    ConfigurationError,
    PermissionDenied,
    ProtectedResource,
    RateLimited,
    TideflowError,
)

if TYPE_CHECKING:
    from tideflow.api.services import Services

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

HOOKS_PREFIX: Final = "/hooks/"
"""Webhook sources (``POST /hooks/{name}``): signed by their sender, not by a token."""
PUBLIC_PATHS: Final = frozenset(
    {"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect"}
)
"""Answered to anyone, without a token or any other check (GET and HEAD only)."""
PUBLIC_PREFIX: Final = "/docs/assets/"
"""Swagger UI's files for ``/docs`` (tideflow.api.docs), public like the page."""
PRINCIPAL: Final = "tideflow.principal"
"""The ASGI scope key the gate puts the request's principal under."""
_WANTED: Final = frozenset(
    {b"host", b"origin", b"authorization", b"content-type", b"content-length"}
    | {b"transfer-encoding", b"ce-specversion"}
)


CONSOLE_PREFIX: Final = "/ui/"
"""The web console's pages (and ``/``): it signs its users in itself (tideflow.console)."""


def is_console(path: str) -> bool:
    """Whether ``path`` belongs to the web console, which authenticates by its session
    cookie and CSRF token (the gate still checks its ``Host`` and ``Origin``)."""
    return path == "/" or path.startswith(CONSOLE_PREFIX)


def is_public(path: str) -> bool:
    """Whether ``path`` is answered to anyone (for GET and HEAD)."""
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIX)


def check_insecure_local(host: str, insecure_local: bool) -> None:
    """Refuse ``--insecure-local`` on an address other machines can reach.

    Raises:
        ConfigurationError: It is set and ``host`` is not a loopback address.
    """
    if insecure_local and not is_loopback(host):
        raise ConfigurationError(
            f"--insecure-local only works on a loopback address, not {host!r}: "
            "a server other machines can reach always needs tokens"
        )


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """How one server admits requests.

    Attributes:
        names: The ``Host`` names it answers to (``None``: any).
        verifier: Checks tokens (``None``: no token store, so no token is valid).
        insecure_local: No token needed (``--insecure-local``, loopback only).
        limiter: Each token's rate limit (``None``: none).
        jwt: Checks JWTs of the configured OIDC issuer (``None``: Tideflow tokens only).
    """

    names: frozenset[str] | None
    verifier: TokenVerifier | None
    insecure_local: bool = False
    limiter: RateLimiter | None = None
    jwt: JwtVerifier | None = None

    @classmethod
    def for_services(cls, services: Services) -> AccessPolicy:
        """The policy of a server with these services and settings.

        Raises:
            ConfigurationError: ``--insecure-local`` on a non-loopback address.
            InvalidArgument: The rate limit is not ``N/s``, ``N/m`` or ``N/h``.
        """
        settings = services.settings
        check_insecure_local(settings.host, settings.insecure_local)
        tokens, verifier = services.tokens, services.verifier
        if verifier is None and tokens is not None:
            verifier = TokenVerifier(tokens, services.clock, ttl=settings.token_cache_seconds)
        names = server_names(settings.host, settings.allowed_hosts)
        text = settings.rate_limit
        default = Rate.parse(text, "--rate-limit") if text else None
        limiter = RateLimiter(services.clock, default)
        return cls(names, verifier, settings.insecure_local, limiter, jwt_verifier(services))

    async def admit(self, scope: Mapping[str, Any]) -> Principal | None:
        """The principal of a request (``None`` for a public one).

        Raises:
            MisdirectedRequest, PermissionDenied, AuthenticationRequired,
            UnsupportedMediaType: The request is refused (see the module docs).
        """
        method: str = scope["method"]
        if method in ("GET", "HEAD") and is_public(scope["path"]):
            return None
        headers = {
            name: value.decode("latin-1") for name, value in scope["headers"] if name in _WANTED
        }
        check_host(headers.get(b"host"), self.names)
        check_origin(headers.get(b"origin"), headers.get(b"host"))
        if is_console(scope["path"]):
            return None  # the console's session, checked by the console (tideflow.console)
        if _signed_hook(method, scope["path"], headers):
            return None  # the webhook checks the request's signature itself
        principal = await self._principal(headers.get(b"authorization"))
        if self.limiter is not None:
            self._within_rate(self.limiter, principal)
        length = headers.get(b"content-length", "0")
        check_content_type(
            method,
            headers.get(b"content-type"),
            has_body=length not in ("", "0") or b"transfer-encoding" in headers,
            binary_event=b"ce-specversion" in headers,
        )
        return principal

    @staticmethod
    def _within_rate(limiter: RateLimiter, principal: Principal) -> None:
        wait = limiter.wait_for(principal.token_id or principal.name, principal.rate)
        if wait:
            rate = principal.rate or limiter.default
            raise RateLimited(
                f"too many requests with token {principal.token_id or principal.name!r} "
                f"(its limit is {rate}): retry in {retry_after(wait)} s",
                retry_after=wait,
            )

    async def _principal(self, authorization: str | None) -> Principal:
        if self.insecure_local:
            return INSECURE_LOCAL
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if self.jwt is not None and scheme.lower() == "bearer" and looks_like_jwt(token):
            return await self.jwt.verify(token)
        if scheme.lower() != "bearer" or self.verifier is None:
            raise AuthenticationRequired(BAD_TOKEN)
        return await self.verifier.verify(token)


def jwt_verifier(services: Services) -> JwtVerifier | None:
    """The JWT verifier of the settings' OIDC issuer (``None`` without one).

    Raises:
        ConfigurationError: An issuer without an audience, or not ``https``.
    """
    settings = services.settings
    if settings.oidc_issuer is None:
        return None
    if not settings.oidc_audience:
        raise ConfigurationError("--oidc-issuer needs --oidc-audience (what 'aud' must hold)")
    config = OidcConfig(
        issuer=settings.oidc_issuer,
        audience=settings.oidc_audience,
        scope_claim=settings.oidc_scope_claim,
    )
    keys = IssuerKeys(settings.oidc_issuer, clock=services.clock)
    return JwtVerifier(config, keys, services.clock)


def _signed_hook(method: str, path: str, headers: Mapping[bytes, str]) -> bool:
    """A webhook delivery without a token: ``POST /hooks/{name}`` checks its HMAC signature
    (and refuses a request without one unless the hook takes tokens)."""
    return method == "POST" and path.startswith(HOOKS_PREFIX) and b"authorization" not in headers


class AccessGate:
    """ASGI middleware: admits each request by the app's :class:`AccessPolicy`.

    Args:
        app: The application behind the gate.
        resolve: The policy for a request (the app's, set by its lifespan).
    """

    def __init__(self, app: ASGIApp, resolve: Callable[[Scope], AccessPolicy]) -> None:
        self.app = app
        self.resolve = resolve

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            try:
                scope[PRINCIPAL] = await self.resolve(scope).admit(scope)
            except TideflowError as exc:
                await tideflow_error_response(exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def principal_of(scope: Mapping[str, Any]) -> Principal:
    """The request's principal.

    Raises:
        AuthenticationRequired: The gate admitted no principal (a public route).
    """
    principal: Principal | None = scope.get(PRINCIPAL)
    if principal is None:
        raise AuthenticationRequired(BAD_TOKEN)
    return principal


def authorize(scope: Mapping[str, Any], needed: str) -> Principal:
    """The request's principal, if it has scope ``needed``.

    Raises:
        AuthenticationRequired: There is no principal.
        PermissionDenied: It lacks the scope.
        ProtectedResource: No token has it: the server alone writes the audit bus.
    """
    principal = principal_of(scope)
    if not principal.allows(needed):
        if server_only(needed):
            raise ProtectedResource(
                f"bus {AUDIT_BUS!r} is the server's audit trail: only the server writes it"
            )
        raise PermissionDenied(f"this token does not have the scope {needed!r}", scope=needed)
    return principal


def requires(scope: str) -> Any:
    """The dependency a route declares for the scope it needs.

    ``scope`` may name a path parameter: ``"publish:{bus}"``. A scope that
    depends on the body (``"subscribe:<the body's bus>"``) is declared as
    written and checked by the route with :func:`authorize`: the dependency
    then only insists on a principal.
    """

    async def check(request: Request) -> Principal:
        if scope.startswith("(route)"):
            return principal_of(request.scope)
        needed = scope.format_map(request.path_params) if "{" in scope else scope
        return authorize(request.scope, needed)

    check.tideflow_scope = scope  # type: ignore[attr-defined]  # read by the route audit
    return Depends(check)


def signed_or(scope: str) -> Any:
    """The dependency of a route whose sender may sign the request instead of sending a
    token (a webhook): it declares ``scope`` and leaves the signature, or the scope, to the
    route."""

    async def check(request: Request) -> Principal | None:
        principal: Principal | None = request.scope.get(PRINCIPAL)
        return principal

    check.tideflow_scope = f"(route) its signature, or {scope}"  # type: ignore[attr-defined]
    return Depends(check)


def in_route(description: str) -> Any:
    """:func:`requires` for a scope the route checks itself, once it knows it."""
    return requires(f"(route) {description}")


def document_security(document: dict[str, Any]) -> dict[str, Any]:
    """Say in an OpenAPI document that every operation but the public ones takes a bearer token."""
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearerToken"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token (tf_<id>_<secret>): tideflow tokens create, or the "
        "first admin token saved in TIDEFLOW_HOME",
    }
    document["security"] = [{"bearerToken": []}]
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            if path in PUBLIC_PATHS:
                operation["security"] = []
            else:
                _document_gate_answers(operation)
    return document


_GATE_ANSWERS: Final = {
    "401": "Unauthorized: no token, or not a valid one",
    "403": "Forbidden: the token lacks the scope, or a foreign Origin",
    "421": "Misdirected Request: a Host this server does not answer to",
}


def _document_gate_answers(operation: dict[str, Any]) -> None:
    """The answers :class:`AccessGate` may give before the route runs."""
    answers = dict(_GATE_ANSWERS)
    if "requestBody" in operation:
        answers["415"] = "Unsupported Media Type: a body without an accepted content type"
    schema = {"$ref": "#/components/schemas/Problem"}
    responses = operation.setdefault("responses", {})
    for status, description in answers.items():
        responses.setdefault(
            status, {"description": description, "content": {PROBLEM_JSON: {"schema": schema}}}
        )
