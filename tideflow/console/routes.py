"""The web console's pages and forms, server-rendered (``/`` and ``/ui/...``).

Each page is rendered on the server from the API's answers (:mod:`tideflow.console.api`)
with Jinja2 templates shipped in the package, autoescaped: every value from a
workflow, an instance or an event is escaped. A few lines of JavaScript, also in
the package, refresh a running instance's part of its page and a bus's newest
events; every page works without them. Nothing is loaded from elsewhere (the
answers carry a ``Content-Security-Policy`` of ``'self'``).

Who may see what is the API's business: the console calls it with the token of
the browser's session (:mod:`tideflow.console.session`; kept in PostgreSQL by
``serve``, so any process on the database knows it), or with none under
``--insecure-local``. Every form carries the session's CSRF token and every
POST is refused without it.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, quote, urlencode

import yaml
from fastapi import APIRouter, FastAPI, Request
from jinja2 import Environment, PackageLoader
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from tideflow import ids
from tideflow.console import diagram, rows
from tideflow.console.api import Api, ApiProblem
from tideflow.console.session import COOKIE, MemorySessions, Session, SessionStore
from tideflow.runtime.status import InstanceStatus

ASSETS: Final = Path(__file__).parent / "assets"
PAGE_SIZE: Final = 50
"""Instances per page of the instances list (``limit`` may ask for up to :data:`MAX_PAGE`)."""
MAX_PAGE: Final = 200
TIMELINE_PAGE: Final = 1000
"""Timeline entries shown on an instance page (``after`` pages on)."""
BUS_PAGE: Final = 50
"""Events per page of a bus."""
MAX_SHOWN_BYTES: Final = 65_536
"""A JSON value longer than this is cut on the page (the API has it whole)."""
MAX_FORM_BYTES: Final = 1_048_576
_DIAGRAMS: Final = 256
_ACTIONS: Final = ("cancel", "suspend", "resume", "retry")
STATUSES: Final = tuple(status.value for status in InstanceStatus)
CSP: Final = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)

_env = Environment(
    loader=PackageLoader("tideflow.console", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)

router = APIRouter(include_in_schema=False)


class LoginNeeded(Exception):
    """The request has no session that may read: the login page, then back to ``target``."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


@dataclass(slots=True)
class Ctx:
    """One console request: its session and the API as that session sees it."""

    request: Request
    session: Session
    api: Api
    new_cookie: bool
    insecure: bool


def _sessions(request: Request) -> SessionStore:
    """The server's sessions (PostgreSQL under ``serve``), else this app's own in memory."""
    app = request.app
    stored: SessionStore | None = app.state.services.console_sessions
    if stored is not None:
        return stored
    sessions: SessionStore | None = getattr(app.state, "console_sessions", None)
    if sessions is None:
        sessions = MemorySessions(app.state.services.clock)
        app.state.console_sessions = sessions
    return sessions


def _insecure(request: Request) -> bool:
    return bool(request.app.state.services.settings.insecure_local)


async def _ctx(request: Request) -> Ctx:
    """The request's session (a new token-less one under ``--insecure-local``).

    Raises:
        LoginNeeded: No session with a token, and tokens are needed.
    """
    sessions = _sessions(request)
    session = await sessions.get(request.cookies.get(COOKIE))
    insecure = _insecure(request)
    new = False
    if session is None or not (session.token or insecure):
        if not insecure:
            raise LoginNeeded(_here(request))
        session, new = await sessions.open(""), True
    host = request.headers.get("host", "127.0.0.1")
    return Ctx(request, session, Api(request.app, host, session.token), new, insecure)


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def _safe_next(target: str | None) -> str:
    """A local path to go back to after login (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _headers(response: Response, ctx: Ctx | None = None) -> Response:
    response.headers["content-security-policy"] = CSP
    response.headers["x-content-type-options"] = "nosniff"
    response.headers["referrer-policy"] = "same-origin"
    response.headers["cache-control"] = "no-store"
    if ctx is not None and ctx.new_cookie:
        _set_cookie(ctx.request, response, ctx.session)
    return response


def _set_cookie(request: Request, response: Response, session: Session) -> None:
    response.set_cookie(
        COOKIE,
        session.id,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def render(ctx: Ctx | None, name: str, code: int = 200, **values: Any) -> Response:
    """A page: template ``name`` with ``values`` (and the session's CSRF token)."""
    template = _env.get_template(name)
    values.setdefault("csrf", ctx.session.csrf if ctx else "")
    values.setdefault("signed_in", bool(ctx and ctx.session.token))
    html = template.render(**values)
    return _headers(HTMLResponse(html, status_code=code), ctx)


def _see(ctx: Ctx, target: str) -> Response:
    return _headers(RedirectResponse(target, status_code=303), ctx)


def shown(value: Any) -> str:
    """A JSON value as the page shows it: indented, cut at :data:`MAX_SHOWN_BYTES`."""
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    if len(text) > MAX_SHOWN_BYTES:
        return text[:MAX_SHOWN_BYTES] + f"\n… cut: {len(text)} characters in all (see the API)"
    return text


_env.filters["shown"] = shown
_env.filters["timeline_rows"] = rows.timeline_rows
_env.filters["q"] = lambda value: quote(str(value), safe="")


async def _form(ctx: Ctx) -> dict[str, str]:
    """The POST's form fields, if it carries the session's CSRF token.

    Raises:
        ApiProblem: 403 without the right token; 413 for a form over :data:`MAX_FORM_BYTES`.
    """
    body = await ctx.request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ApiProblem(413, {"detail": f"the form is larger than {MAX_FORM_BYTES} bytes"})
    fields = _fields(body)
    if not ctx.session.csrf_ok(fields.get("csrf")):
        raise ApiProblem(403, {"detail": "the form's CSRF token is missing or stale: reload"})
    return fields


def _fields(body: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


# --- login --------------------------------------------------------------------------


@router.get("/ui/login")
async def login_page(request: Request, next: str = "/") -> Response:
    return render(None, "login.html", target=_safe_next(next), error=None)


@router.post("/ui/login")
async def login(request: Request) -> Response:
    body = await request.body()
    fields = _fields(body[:MAX_FORM_BYTES])
    token = fields.get("token", "").strip()
    target = _safe_next(fields.get("next"))
    api = Api(request.app, request.headers.get("host", "127.0.0.1"), token)
    try:
        async with api:
            await api.get("/workflows")  # any read the token may do proves it
    except ApiProblem as problem:
        error = "That token is not valid." if problem.status == 401 else problem.detail
        return render(None, "login.html", 401, target=target, error=error)
    session = await _sessions(request).open(token)
    response = RedirectResponse(target, status_code=303)
    _set_cookie(request, response, session)
    return _headers(response)


@router.post("/ui/logout")
async def logout(request: Request) -> Response:
    ctx = await _ctx(request)
    async with ctx.api:
        await _form(ctx)
    await _sessions(request).close(ctx.session.id)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return _headers(response)


# --- workflows ----------------------------------------------------------------------


@router.get("/")
async def workflows_page(request: Request) -> Response:
    ctx = await _ctx(request)
    async with ctx.api:
        listed = await ctx.api.get("/workflows")
    return render(ctx, "workflows.html", workflows=listed["workflows"][:MAX_PAGE * 5])


async def _graph(ctx: Ctx, workflow_id: str, version: str) -> diagram.Graph:
    """The diagram's graph of a version (versions never change: cached per server)."""
    cache: OrderedDict[tuple[str, str], diagram.Graph] = _cache(ctx.request)
    key = (workflow_id, version)
    if key not in cache:
        source = await ctx.api.text(f"/workflows/{quote(workflow_id)}/versions/{quote(version)}")
        cache[key] = diagram.graph(_parse(source))
        while len(cache) > _DIAGRAMS:
            cache.popitem(last=False)
    return cache[key]


def _cache(request: Request) -> OrderedDict[tuple[str, str], diagram.Graph]:
    cache: OrderedDict[tuple[str, str], diagram.Graph] | None = getattr(
        request.app.state, "console_diagrams", None
    )
    if cache is None:
        cache = request.app.state.console_diagrams = OrderedDict()
    return cache


def _parse(source: str) -> Any:
    """A stored definition's source (accepted at deploy, so within its limits)."""
    try:
        return yaml.safe_load(source)
    except yaml.YAMLError:
        return None


@router.get("/ui/workflows/{workflow_id}")
async def workflow_page(request: Request, workflow_id: str, version: str = "") -> Response:
    ctx = await _ctx(request)
    async with ctx.api:
        return await _workflow_page(ctx, workflow_id, version, None, "{}")


async def _workflow_page(
    ctx: Ctx, workflow_id: str, version: str, error: str | None, input_text: str
) -> Response:
    summary = await ctx.api.get(f"/workflows/{quote(workflow_id)}")
    chosen = version if version in summary["versions"] else summary["version"]
    source = await ctx.api.text(f"/workflows/{quote(workflow_id)}/versions/{quote(chosen)}")
    svg = diagram.render_svg(await _graph(ctx, workflow_id, chosen))
    listed = await ctx.api.get("/instances", {"workflow": workflow_id, "limit": 20})
    return render(
        ctx,
        "workflow.html",
        400 if error else 200,
        workflow=summary,
        version=chosen,
        source=source,
        svg=svg,
        instances=listed["instances"],
        error=error,
        input_text=input_text,
    )


@router.post("/ui/workflows/{workflow_id}/start")
async def start_instance(request: Request, workflow_id: str) -> Response:
    ctx = await _ctx(request)
    async with ctx.api:
        fields = await _form(ctx)
        text = fields.get("input", "").strip() or "{}"
        try:
            started = await ctx.api.post(
                f"/workflows/{quote(workflow_id)}/instances", text.encode()
            )
        except ApiProblem as problem:
            if problem.status in (401, 404):
                raise
            return await _workflow_page(ctx, workflow_id, "", _problem_text(problem), text)
    return _see(ctx, f"/ui/instances/{quote(started['id'])}")


def _problem_text(problem: ApiProblem) -> str:
    path = problem.body.get("path")
    return f"{problem.detail} (at {path})" if path else problem.detail


# --- deploy -------------------------------------------------------------------------


@router.get("/ui/deploy")
async def deploy_page(request: Request) -> Response:
    ctx = await _ctx(request)
    return render(ctx, "deploy.html", source="", problems=[], error=None)


@router.post("/ui/deploy")
async def deploy(request: Request) -> Response:
    ctx = await _ctx(request)
    async with ctx.api:
        fields = await _form(ctx)
        source = fields.get("source", "")
        try:
            deployed = await ctx.api.post("/workflows", source.encode(), "application/yaml")
        except ApiProblem as problem:
            if problem.status == 401:
                raise
            problems = [*problem.body.get("errors", []), *problem.body.get("warnings", [])]
            return render(
                ctx, "deploy.html", 422, source=source, problems=problems, error=problem.detail
            )
    return _see(ctx, f"/ui/workflows/{quote(deployed['id'])}")


# --- instances ----------------------------------------------------------------------


@router.get("/ui/instances")
async def instances_page(
    request: Request,
    workflow: str = "",
    status: str = "",
    correlation: str = "",
    cursor: str = "",
    limit: int = PAGE_SIZE,
) -> Response:
    ctx = await _ctx(request)
    limit = max(1, min(limit, MAX_PAGE))
    filters = {"workflow": workflow, "status": status, "correlation": correlation.strip()}
    error = None
    async with ctx.api:
        try:
            listed = await ctx.api.get("/instances", {**filters, "cursor": cursor, "limit": limit})
        except ApiProblem as problem:
            if problem.status == 401:
                raise
            listed, error = {"instances": [], "next": None}, _problem_text(problem)
    after = listed.get("next")
    more = f"/ui/instances?{urlencode({**filters, 'cursor': after, 'limit': limit})}"
    return render(
        ctx,
        "instances.html",
        400 if error else 200,
        instances=listed["instances"],
        filters=filters,
        statuses=STATUSES,
        next_url=more if after else None,
        error=error,
    )


async def _instance_view(ctx: Ctx, instance_id: str, after: str) -> dict[str, Any]:
    instance, timeline = await asyncio.gather(
        ctx.api.get(f"/instances/{quote(instance_id)}"),
        ctx.api.get(
            f"/instances/{quote(instance_id)}/timeline",
            {"after": after, "limit": TIMELINE_PAGE},
        ),
    )
    error = instance.get("error") or {}
    failed = error.get("state") if instance["status"] == "failed" else None
    current = instance.get("currentState") if failed is None else None
    graph = await _graph(ctx, instance["workflowId"], instance["version"])
    final = InstanceStatus(instance["status"]).final
    next_url = None
    if timeline.get("next"):
        next_url = f"/ui/instances/{quote(instance_id)}?{urlencode({'after': timeline['next']})}"
    return {
        "instance": instance,
        "entries": timeline["entries"],
        "timeline_next": next_url,
        "svg": diagram.render_svg(graph, current=current, failed=failed),
        "final": final,
        "highlight": failed or current,
    }


@router.get("/ui/instances/{instance_id}")
async def instance_page(request: Request, instance_id: str, after: str = "") -> Response:
    ctx = await _ctx(request)
    async with ctx.api:
        view = await _instance_view(ctx, instance_id, after)
    return render(ctx, "instance.html", **view, message=request.query_params.get("done"))


@router.get("/ui/instances/{instance_id}/live")
async def instance_live(request: Request, instance_id: str) -> Response:
    """The part of an instance page that changes while it runs (its script swaps it in)."""
    ctx = await _ctx(request)
    async with ctx.api:
        view = await _instance_view(ctx, instance_id, "")
    return render(ctx, "instance_live.html", **view)


@router.post("/ui/instances/{instance_id}/{action}")
async def instance_action(request: Request, instance_id: str, action: str) -> Response:
    ctx = await _ctx(request)
    if action not in _ACTIONS:
        raise ApiProblem(404, {"detail": f"no such action: {action}"})
    async with ctx.api:
        await _form(ctx)
        try:
            await ctx.api.post(f"/instances/{quote(instance_id)}/{action}")
            done = f"{action}: done"
        except ApiProblem as problem:
            if problem.status == 401:
                raise
            done = f"{action}: {problem.detail}"
    return _see(ctx, f"/ui/instances/{quote(instance_id)}?{urlencode({'done': done})}")


# --- buses --------------------------------------------------------------------------


@router.get("/ui/buses")
async def buses_page(request: Request) -> Response:
    ctx = await _ctx(request)
    async with ctx.api:
        buses = (await ctx.api.get("/buses"))["buses"][:MAX_PAGE]
        figures = [await _bus_figures(ctx, bus["name"]) for bus in buses]
        subscriptions = (await ctx.api.get("/subscriptions"))["subscriptions"][:MAX_PAGE]
        timers = (await ctx.api.get("/timers")).get("timers", [])[:MAX_PAGE]
    return render(
        ctx, "buses.html", buses=figures, subscriptions=subscriptions, timers=timers
    )


async def _bus_figures(ctx: Ctx, name: str) -> Mapping[str, Any]:
    try:
        figures: Mapping[str, Any] = await ctx.api.get(f"/buses/{quote(name, safe='')}")
    except ApiProblem as problem:
        if problem.status == 401:
            raise
        return {"name": name, "error": problem.detail}
    return figures


@router.get("/ui/buses/{bus}")
async def bus_page(request: Request, bus: str, after: int | None = None) -> Response:
    ctx = await _ctx(request)
    async with ctx.api:
        return await _bus_page(ctx, bus, after, None)


async def _bus_page(ctx: Ctx, bus: str, after: int | None, error: str | None) -> Response:
    path = f"/buses/{quote(bus, safe='')}"
    figures = await ctx.api.get(path)
    last = int(figures.get("lastOffset") or 0)
    first = int(figures.get("firstOffset") or 1)
    start = max(first - 1, last - BUS_PAGE) if after is None else max(0, after)
    page = await ctx.api.get(f"{path}/events", {"after": start, "limit": BUS_PAGE})
    events = list(reversed(page["events"]))
    older = max(first - 1, start - BUS_PAGE) if start > first - 1 else None
    newer = page["next"] if page["next"] < last else None
    return render(
        ctx,
        "bus.html",
        400 if error else 200,
        bus=figures,
        events=events,
        newest=page["next"],
        live=after is None,
        older=older,
        newer=newer,
        error=error,
    )


@router.get("/ui/buses/{bus}/tail")
async def bus_tail(request: Request, bus: str, after: int = 0) -> Response:
    """Rows of the events after ``after`` (newest first), for the page's live tail."""
    ctx = await _ctx(request)
    async with ctx.api:
        page = await ctx.api.get(
            f"/buses/{quote(bus, safe='')}/events", {"after": max(0, after), "limit": BUS_PAGE}
        )
    return render(
        ctx, "bus_rows.html", bus={"name": bus}, events=list(reversed(page["events"])),
        newest=page["next"],
    )


@router.post("/ui/buses/{bus}/send")
async def send_event(request: Request, bus: str) -> Response:
    ctx = await _ctx(request)
    async with ctx.api:
        fields = await _form(ctx)
        try:
            event = _event(fields)
            await ctx.api.post(
                f"/buses/{quote(bus, safe='')}/events",
                json.dumps(event).encode(),
                "application/cloudevents+json",
            )
        except ApiProblem as problem:
            if problem.status == 401:
                raise
            return await _bus_page(ctx, bus, None, _problem_text(problem))
    return _see(ctx, f"/ui/buses/{quote(bus, safe='')}")


def _event(fields: Mapping[str, str]) -> dict[str, Any]:
    """A structured CloudEvent from the send form.

    Raises:
        ApiProblem: 400 when the data is not JSON.
    """
    text = fields.get("data", "").strip()
    try:
        data = json.loads(text) if text else None
    except ValueError as exc:
        raise ApiProblem(400, {"detail": f"the data is not JSON: {exc}", "path": "data"}) from None
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": fields.get("id", "").strip() or ids.new_id(),
        "source": fields.get("source", "").strip() or "/tideflow/console",
        "type": fields.get("type", "").strip(),
    }
    if fields.get("subject", "").strip():
        event["subject"] = fields["subject"].strip()
    if data is not None:
        event["datacontenttype"] = "application/json"
        event["data"] = data
    return event


# --- errors -------------------------------------------------------------------------


async def _login_needed(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginNeeded)
    target = "/ui/login?" + urlencode({"next": exc.target})
    return _headers(RedirectResponse(target, status_code=303))


async def _api_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiProblem)
    if exc.status == 401:  # revoked or expired token: sign in again
        await _sessions(request).close(request.cookies.get(COOKIE))
        return await _login_needed(request, LoginNeeded(_here(request)))
    return render(None, "error.html", exc.status, status=exc.status, detail=_problem_text(exc))


def install(app: FastAPI) -> None:
    """Serve the console from ``app``: its pages, forms and files."""
    app.include_router(router)
    app.mount("/ui/assets", StaticFiles(directory=ASSETS), name="console-assets")
    app.add_exception_handler(LoginNeeded, _login_needed)
    app.add_exception_handler(ApiProblem, _api_problem)
