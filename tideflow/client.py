"""Tideflow's Python client of its HTTP API: :class:`ApiClient` (async, used by the CLI)
and :class:`Client` (the same calls, blocking).

Every failure raises a :class:`~tideflow.errors.TideflowError` with one line that
says what went wrong: an error response is an :class:`ApiError`, which also keeps
the server's problem (``status``, ``type``, ``title``, ``detail``, ``path`` and, for an
invalid workflow, every problem in ``errors``); an unreachable server is a plain
``TideflowError``. ``docs/client.md`` shows both clients.

Answers are typed: the calls on workflows, instances and events return
:class:`Workflow`, :class:`Deployed`, :class:`Instance`, :class:`InstanceStarted`,
:class:`InstancePage`, :class:`EventAck` and :class:`EventPage`: typed dicts
(``TypedDict``) of the API's JSON -- plain dicts at run time, with the API's own
camelCase keys, so they print as JSON unchanged; a type checker knows every key.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final, NotRequired, TypedDict, Unpack, overload
from urllib.parse import quote

import httpx
import orjson

from tideflow.errors import EventRejected, TideflowError
from tideflow.http_binding import encode_structured, validate_event

DEFAULT_SERVER: Final = "http://127.0.0.1:8080"
TAIL_WAIT_SECONDS: Final = 30.0

# --- typed answers ------------------------------------------------------------------

class Problem(TypedDict):
    """One problem of a workflow definition."""

    path: str
    """Where in the document, e.g. ``states[2].transition``."""
    message: str
    severity: str
    """``error`` or ``warning``."""


class Workflow(TypedDict):
    """A workflow's version, without its source (``GET /workflows``)."""

    id: str
    version: str
    contentType: str
    createdAt: str
    """RFC 3339, UTC (``Z``)."""
    name: str | None


class Deployed(TypedDict):
    """A deployed version (``POST /workflows``)."""

    id: str
    version: str
    warnings: list[Problem]


class InstanceError(TypedDict):
    """Why an instance failed."""

    name: str
    """The workflow error's name, or a built-in one (``timeout``, ``expression``, ...)."""
    code: str | None
    """HTTP status of an HTTP function, ``TIMEOUT``, ..."""
    message: str
    state: str | None
    """The state where it happened (for DSL 1.0: the task's JSON Pointer)."""
    details: NotRequired[dict[str, Any]]
    """DSL 1.0: the error as Problem Details (``type``, ``status``, ``title``, ...)."""


class InstanceStarted(TypedDict):
    """A started instance, before it has run (a start without ``wait``)."""

    id: str
    status: str
    """One of :class:`~tideflow.runtime.status.InstanceStatus`'s values
    (``InstanceStatus(instance["status"]).final`` says whether it has ended)."""


class Instance(TypedDict):
    """A workflow instance (``GET /instances/{id}``)."""

    id: str
    workflowId: str
    version: str
    status: str
    """One of :class:`~tideflow.runtime.status.InstanceStatus`'s values."""
    currentState: str | None
    """The state being run; ``None`` once ended."""
    input: Any
    data: Any
    output: Any
    """Set once completed."""
    error: InstanceError | None
    startedAt: str
    updatedAt: str
    endedAt: str | None
    parentId: str | None
    """The instance that started it as a subflow, if any."""


class InstancePage(TypedDict):
    """A page of instances (``GET /instances``)."""

    instances: list[Instance]
    next: str | None
    """The ``cursor`` of the next page; ``None`` at the end."""


class EventAck(TypedDict):
    """The acknowledgement of one event, sent only after it is committed (or held)."""

    bus: str
    offset: int | None
    """Its offset (for a duplicate, the original's); ``None`` for an event held for later."""
    duplicate: bool
    scheduled: NotRequired[bool]
    """True for an event held until its ``deliverytime`` (or ``delay``)."""
    timerId: NotRequired[str]
    deliveryTime: NotRequired[str]


class EventRecord(TypedDict):
    """A stored event and its offset."""

    offset: int
    event: dict[str, Any]
    """The CloudEvent in structured JSON form, as sent."""


class EventPage(TypedDict):
    """A page of a bus (``GET /buses/{bus}/events``)."""

    bus: str
    events: list[EventRecord]
    next: int
    """The ``after`` of the following page."""


class InstanceFilters(TypedDict, total=False):
    """Which instances a list holds (:meth:`Client.list_instances`' keywords)."""

    workflow: str | None
    status: str | None
    correlation: str | None
    """``KEY:VALUE``: those waiting for an event with that correlation value."""
    limit: int
    order: str
    """``desc`` (the newest first, the default) or ``asc``."""


class PageFilters(InstanceFilters, total=False):
    """:class:`InstanceFilters` and the page to start at (:meth:`Client.instances_page`)."""

    cursor: str | None
    """``next`` of the previous page."""


TimelineEntry = dict[str, Any]
"""One timeline entry: ``{kind, key, state, at, run, ...}`` plus what its kind adds."""


class ApiError(TideflowError):
    """The server answered with an error (4xx, 5xx): its message and its problem's fields.

    Attributes:
        status: The HTTP status.
        type: The problem's ``type`` (``"not-found"``, ``"invalid-workflow"``, ...), if any.
        title: Its ``title``, if any.
        detail: Its ``detail``: what went wrong, in a sentence.
        path: Where in what was sent (``functions[0].operation``), if the server said.
        errors: Every problem of an invalid workflow (``{path, message, severity}``).
    """

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(describe_failure(response))
        self.status = response.status_code
        try:
            problem = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            problem = None
        problem = problem if isinstance(problem, dict) else {}
        self.type: str | None = problem.get("type")
        self.title: str | None = problem.get("title")
        self.detail: str = str(problem.get("detail") or self.message)
        self.path: str | None = problem.get("path")
        errors = problem.get("errors")
        self.errors: list[dict[str, Any]] = errors if isinstance(errors, list) else []


def trusting(ca_cert: Path | None) -> ssl.SSLContext | bool:
    """How HTTPS servers are verified: against ``ca_cert`` (PEM) and no other
    authority when given, else against the system's authorities.

    Raises:
        TideflowError: ``ca_cert`` cannot be read as PEM certificates.
    """
    if ca_cert is None:
        return True
    try:
        return ssl.create_default_context(cafile=ca_cert)
    except (OSError, ssl.SSLError) as exc:
        raise TideflowError(f"--ca-cert / TIDEFLOW_CA_CERT {ca_cert}: {exc}") from None


class ApiClient:
    """Talks to one Tideflow server.

    Use as ``async with ApiClient(url, token=...) as client: ...``; the
    token is sent as ``Authorization: Bearer …`` with every request. An
    ``https://`` server is verified against ``ca_cert`` when given (a
    private or self-signed authority), else the system's authorities.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_SERVER,
        *,
        timeout: float = TAIL_WAIT_SECONDS + 30,
        transport: httpx.AsyncBaseTransport | None = None,
        token: str | None = None,
        ca_cert: Path | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"authorization": f"Bearer {token}"} if token else None
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers=headers,
            verify=trusting(ca_cert),
        )

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise TideflowError(
                f"cannot reach the Tideflow server at {self.base_url}: "
                f"{str(exc) or type(exc).__name__}"
            ) from exc
        if response.status_code >= 400:
            raise ApiError(response)
        if response.status_code == 204 or not response.content:
            return None
        return orjson.loads(response.content)

    async def send_event(self, bus: str, event: Mapping[str, Any]) -> EventAck:
        """Send one event in structured mode; return its acknowledgement."""
        headers, body = encode_structured(event)
        result = await self._call("POST", f"/buses/{bus}/events", headers=headers, content=body)
        ack: EventAck = result["events"][0]
        return ack

    async def read(self, bus: str, after: int = 0, limit: int = 100, wait: float = 0) -> EventPage:
        """One page of ``bus`` after offset ``after``: ``{bus, events, next}``."""
        params = {"after": after, "limit": limit, "wait": wait}
        page: EventPage = await self._call("GET", f"/buses/{bus}/events", params=params)
        return page

    async def tail(self, bus: str, after: int = 0) -> AsyncIterator[EventRecord]:
        """Every event of ``bus`` after ``after``, forever, long-polling for new ones."""
        while True:
            page = await self.read(bus, after, limit=1000, wait=TAIL_WAIT_SECONDS)
            for record in page["events"]:
                yield record
            after = page["next"]

    async def create_bus(
        self,
        name: str,
        retention: Mapping[str, Any] | None = None,
        *,
        segment_events: int | None = None,
        archive: Mapping[str, Any] | None = None,
    ) -> Any:
        """Create a bus; return it."""
        body: dict[str, Any] = {"name": name, "retention": retention}
        if segment_events is not None:
            body["segmentEvents"] = segment_events
        if archive is not None:
            body["archive"] = archive
        return await self._call("POST", "/buses", json=body)

    async def list_buses(self) -> Any:
        """Every bus."""
        return (await self._call("GET", "/buses"))["buses"]

    async def get_bus(self, name: str) -> Any:
        """A bus with its figures."""
        return await self._call("GET", f"/buses/{name}")

    async def delete_bus(self, name: str) -> None:
        """Delete a bus."""
        await self._call("DELETE", f"/buses/{name}")

    # -- workflows and instances -------------------------------------------------

    async def deploy_workflow(self, text: str, content_type: str) -> Deployed:
        """Deploy a definition; return ``{id, version, warnings}``.

        An invalid definition raises with every problem, one per line after the first.
        """
        headers = {"content-type": content_type}
        deployed: Deployed = await self._call(
            "POST", "/workflows", content=text.encode(), headers=headers
        )
        return deployed

    async def deploy_bundle(self, data: bytes, workflow: str | None = None) -> Deployed:
        """Deploy a zip bundle (a definition with its files, :mod:`tideflow.bundle`);
        ``workflow`` names the definition when its root holds several."""
        params = {"workflow": workflow} if workflow else {}
        headers = {"content-type": "application/zip"}
        deployed: Deployed = await self._call(
            "POST", "/workflows", content=data, headers=headers, params=params
        )
        return deployed

    async def list_workflows(self) -> list[Workflow]:
        """The latest version of every workflow."""
        workflows: list[Workflow] = (await self._call("GET", "/workflows"))["workflows"]
        return workflows

    @overload
    async def start_instance(
        self, workflow_id: str, data: Any, *, wait: None = None
    ) -> InstanceStarted: ...

    @overload
    async def start_instance(self, workflow_id: str, data: Any, *, wait: float) -> Instance: ...

    async def start_instance(
        self, workflow_id: str, data: Any, *, wait: float | None = None
    ) -> InstanceStarted | Instance:
        """Start an instance: its id and status; with ``wait``, the whole instance once
        ended (or as it is when the wait is over)."""
        params = {} if wait is None else {"wait": wait}
        path = f"/workflows/{workflow_id}/instances"
        started: InstanceStarted | Instance = await self._call(
            "POST", path, json=data, params=params
        )
        return started

    async def list_instances(
        self,
        *,
        workflow: str | None = None,
        status: str | None = None,
        correlation: str | None = None,
        limit: int = 100,
        order: str = "desc",
    ) -> list[Instance]:
        """The first ``limit`` instances (filtered), the newest first (``order="asc"``:
        in start order)."""
        page = await self.instances_page(
            workflow=workflow, status=status, correlation=correlation, limit=limit, order=order
        )
        return page["instances"]

    async def instances_page(
        self,
        *,
        workflow: str | None = None,
        status: str | None = None,
        correlation: str | None = None,
        limit: int = 100,
        order: str = "desc",
        cursor: str | None = None,
    ) -> InstancePage:
        """One page of instances: ``{"instances": [...], "next": cursor or None}``.

        ``correlation`` ``"KEY:VALUE"``: only instances waiting for an event whose
        correlation attribute KEY is VALUE (a malformed one is an :class:`ApiError` 422).
        """
        params: dict[str, Any] = {"limit": limit, "order": order}
        given = (
            ("workflow", workflow),
            ("status", status),
            ("correlation", correlation),
            ("cursor", cursor),
        )
        params |= {k: v for k, v in given if v is not None}
        page: InstancePage = await self._call("GET", "/instances", params=params)
        return page

    async def get_instance(self, instance_id: str, wait: float | None = None) -> Instance:
        """An instance's status; with ``wait``, once it has ended or ``wait`` seconds passed."""
        path = f"/instances/{instance_id}"
        if wait is None:
            instance: Instance = await self._call("GET", path)
        else:
            instance = await self._call("GET", path, params={"wait": wait}, timeout=wait + 30)
        return instance

    async def timeline(self, instance_id: str) -> list[TimelineEntry]:
        """An instance's timeline entries, every page of them."""
        entries: list[TimelineEntry] = []
        params: dict[str, Any] = {}
        while True:
            page = await self._call("GET", f"/instances/{instance_id}/timeline", params=params)
            entries.extend(page["entries"])
            if page["next"] is None:
                return entries
            params = {"after": page["next"]}

    async def instance_action(self, instance_id: str, action: str) -> Instance:
        """``cancel``, ``suspend``, ``resume`` or ``retry`` an instance; return it."""
        instance: Instance = await self._call("POST", f"/instances/{instance_id}/{action}")
        return instance

    async def list_timers(
        self, kind: str | None = None, state: str = "pending", limit: int = 100
    ) -> Any:
        """Timers in due order, filtered by kind and state (``all`` for any)."""
        params: dict[str, Any] = {"state": state, "limit": limit}
        if kind:
            params["kind"] = kind
        return (await self._call("GET", "/timers", params=params))["timers"]

    # -- subscriptions -------------------------------------------------------------

    async def create_subscription(self, body: Mapping[str, Any]) -> Any:
        """Create a subscription; return it."""
        return await self._call("POST", "/subscriptions", json=dict(body))

    async def list_subscriptions(self) -> Any:
        """Every subscription with its figures."""
        return (await self._call("GET", "/subscriptions"))["subscriptions"]

    async def get_subscription(self, subscription_id: str) -> Any:
        """One subscription with its figures."""
        return await self._call("GET", f"/subscriptions/{subscription_id}")

    async def delete_subscription(self, subscription_id: str) -> None:
        """Delete a subscription."""
        await self._call("DELETE", f"/subscriptions/{subscription_id}")

    async def subscription_action(
        self, subscription_id: str, action: str, body: Mapping[str, Any] | None = None
    ) -> Any:
        """``pause``, ``resume`` or ``reset`` (with ``{"offset"}`` or ``{"time"}``); return it."""
        path = f"/subscriptions/{subscription_id}/{action}"
        return await self._call("POST", path, json=None if body is None else dict(body))

    # -- connectors ------------------------------------------------------------------

    async def create_connector(self, body: Mapping[str, Any]) -> Any:
        """Create a connector; return its status."""
        return await self._call("POST", "/connectors", json=dict(body))

    async def list_connectors(self) -> Any:
        """Every connector with its status."""
        return (await self._call("GET", "/connectors"))["connectors"]

    async def get_connector(self, name: str) -> Any:
        """One connector with its status."""
        return await self._call("GET", f"/connectors/{name}")

    async def delete_connector(self, name: str) -> None:
        """Delete a connector."""
        await self._call("DELETE", f"/connectors/{name}")

    async def connector_action(self, name: str, action: str) -> Any:
        """``pause`` or ``resume``; return its status."""
        return await self._call("POST", f"/connectors/{name}/{action}")

    # -- tokens ----------------------------------------------------------------------

    async def create_token(self, name: str, scopes: list[str], rate: str | None = None) -> Any:
        """Make a token (``rate``: its own limit, ``N/s``); the answer's ``token`` is its
        text (shown this once)."""
        body = {"name": name, "scopes": scopes, **({"rate": rate} if rate else {})}
        return await self._call("POST", "/tokens", json=body)

    async def get_cluster(self) -> Any:
        """The processes sharing the database, what each owns and the lag per unit."""
        return await self._call("GET", "/cluster")

    async def list_tokens(self) -> Any:
        """Every token (never its text)."""
        return (await self._call("GET", "/tokens"))["tokens"]

    async def revoke_token(self, token_id: str) -> None:
        """Revoke a token."""
        await self._call("DELETE", f"/tokens/{token_id}")

    # -- secret grants -------------------------------------------------------------

    async def grant_secrets(self, pattern: str, names: list[str]) -> Any:
        """Let subjects matching ``pattern`` receive the secrets ``names``."""
        body = {"pattern": pattern, "secrets": names}
        return await self._call("POST", "/secrets/grants", json=body)

    async def list_grants(self) -> Any:
        """Every grant (names only), the settings' first."""
        return (await self._call("GET", "/secrets/grants"))["grants"]

    async def revoke_grant(self, pattern: str) -> None:
        """Forget the grant of ``pattern`` made through the API."""
        await self._call("DELETE", f"/secrets/grants/{quote(pattern, safe='')}")


class Client:
    """The blocking client: :class:`ApiClient`'s calls, each run to its end on a private
    event loop. Use as ``with Client(url, token=...) as client: ...`` (from code that
    runs no event loop of its own; inside one, use :class:`ApiClient`).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_SERVER,
        *,
        token: str | None = None,
        timeout: float = TAIL_WAIT_SECONDS + 30,
        ca_cert: Path | None = None,
    ) -> None:
        self._runner = asyncio.Runner()
        self.api = ApiClient(base_url, token=token, timeout=timeout, ca_cert=ca_cert)
        """The async client underneath (every call of the API, for those not wrapped here)."""

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections and the event loop."""
        try:
            self._runner.run(self.api.__aexit__(None, None, None))
        finally:
            self._runner.close()

    def deploy_workflow(self, text: str, content_type: str = "application/yaml") -> Deployed:
        """Deploy a definition (YAML or JSON text); ``{id, version, warnings}``."""
        return self._runner.run(self.api.deploy_workflow(text, content_type))

    def deploy_bundle(self, data: bytes, workflow: str | None = None) -> Deployed:
        """Deploy a zip bundle; ``{id, version, warnings}``."""
        return self._runner.run(self.api.deploy_bundle(data, workflow))

    def list_workflows(self) -> list[Workflow]:
        """The latest version of every workflow."""
        return self._runner.run(self.api.list_workflows())

    @overload
    def start_instance(
        self, workflow_id: str, data: Any, *, wait: None = None
    ) -> InstanceStarted: ...

    @overload
    def start_instance(self, workflow_id: str, data: Any, *, wait: float) -> Instance: ...

    def start_instance(
        self, workflow_id: str, data: Any, *, wait: float | None = None
    ) -> InstanceStarted | Instance:
        """Start an instance: its id and status; with ``wait``, the whole instance once
        ended (or the wait over)."""
        if wait is None:
            return self._runner.run(self.api.start_instance(workflow_id, data))
        return self._runner.run(self.api.start_instance(workflow_id, data, wait=wait))

    def get_instance(self, instance_id: str, wait: float | None = None) -> Instance:
        """An instance; with ``wait``, once ended or after ``wait`` seconds."""
        return self._runner.run(self.api.get_instance(instance_id, wait))

    def list_instances(self, **filters: Unpack[InstanceFilters]) -> list[Instance]:
        """The first ``limit`` instances (filtered), the newest first; ``correlation``
        ``"KEY:VALUE"``: those waiting on that correlation value (see :class:`ApiClient`)."""
        return self._runner.run(self.api.list_instances(**filters))

    def instances_page(self, **filters: Unpack[PageFilters]) -> InstancePage:
        """One page of instances and the ``cursor`` of the next (see :class:`ApiClient`)."""
        return self._runner.run(self.api.instances_page(**filters))

    def timeline(self, instance_id: str) -> list[TimelineEntry]:
        """An instance's timeline entries, every page of them."""
        return self._runner.run(self.api.timeline(instance_id))

    def instance_action(self, instance_id: str, action: str) -> Instance:
        """``cancel``, ``suspend``, ``resume`` or ``retry`` an instance; the instance."""
        return self._runner.run(self.api.instance_action(instance_id, action))

    def send_event(self, bus: str, event: Mapping[str, Any]) -> EventAck:
        """Send one CloudEvent (structured mode); its acknowledgement (``offset``...)."""
        return self._runner.run(self.api.send_event(bus, event))

    def read(self, bus: str, after: int = 0, limit: int = 100, wait: float = 0) -> EventPage:
        """One page of ``bus`` after offset ``after``: ``{bus, events, next}``."""
        return self._runner.run(self.api.read(bus, after, limit, wait))

    def create_bus(self, name: str, retention: Mapping[str, Any] | None = None) -> Any:
        """Create a bus; the bus."""
        return self._runner.run(self.api.create_bus(name, retention))

    def list_buses(self) -> Any:
        """Every bus."""
        return self._runner.run(self.api.list_buses())


def describe_failure(response: httpx.Response) -> str:
    """One line from an error response: the problem's detail and path, or the status."""
    try:
        problem = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        problem = None
    if not isinstance(problem, dict) or "detail" not in problem:
        return f"the server answered {response.status_code} {response.reason_phrase}"
    where = f" (at {problem['path']})" if problem.get("path") else ""
    line = f"{problem['detail']}{where} [HTTP {response.status_code}]"
    errors = problem.get("errors")
    if isinstance(errors, list) and len(errors) > 1:  # an invalid workflow: every problem
        line += "".join(f"\n  {e.get('path')}: {e.get('message')}" for e in errors)
    return line


def build_event(
    type_: str,
    source: str,
    *,
    event_id: str,
    time: str,
    data: str | None = None,
    extensions: Mapping[str, str] | None = None,
    subject: str | None = None,
) -> dict[str, Any]:
    """A CloudEvent from command-line values, validated.

    Args:
        type_: ``type``.
        source: ``source``.
        event_id: ``id``.
        time: ``time`` (RFC 3339).
        data: JSON text of the payload, if any.
        extensions: Extension attributes (string values).
        subject: ``subject``, if any.

    Raises:
        EventRejected: ``data`` is not JSON or an attribute is invalid.
    """
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": type_,
        "time": time,
    }
    if subject is not None:
        event["subject"] = subject
    for name, value in (extensions or {}).items():
        if name in event:
            raise EventRejected(f"--ext {name}=… would replace the {name!r} attribute", name)
        event[name] = value
    if data is not None:
        try:
            event["data"] = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise EventRejected(f"the data is not valid JSON: {exc}", "data") from exc
        event["datacontenttype"] = "application/json"
    return validate_event(event)


def parse_extensions(pairs: list[str]) -> dict[str, str]:
    """``["k=v", …]`` as a mapping.

    Raises:
        EventRejected: A pair has no ``=``.
    """
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise EventRejected(f"--ext {pair!r} is not of the form name=value", pair)
        out[name.strip()] = value
    return out
