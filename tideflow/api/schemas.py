"""Pydantic models of the HTTP API's request and response bodies.

The ingestion and reading routes build their JSON with orjson directly (they
are the hot path); these models describe those bodies in the OpenAPI
document and validate the small request bodies of bus management.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tideflow.runtime.status import InstanceStatus


class Problem(BaseModel):
    """An error: what was wrong and where."""

    type: str = Field(description="A short, stable error code such as `invalid-event`.")
    title: str = Field(description="A human-readable summary of the error kind.")
    detail: str = Field(description="What exactly was wrong.")
    path: str | None = Field(
        default=None, description="Where: an attribute, `[index].attribute` in a batch, a field."
    )


class Ack(BaseModel):
    """The acknowledgement of one event, sent only after it is committed (or held)."""

    bus: str
    offset: int | None = Field(
        description="Its offset; for a duplicate, that of the stored original; "
        "null for an event held for later delivery."
    )
    duplicate: bool = Field(description="True if an event with this source and id was stored.")
    scheduled: bool | None = Field(
        default=None,
        description="True when the event carried `deliverytime` or `delay` and is held.",
    )
    timerId: str | None = Field(
        default=None, description="The timer holding it (DELETE /buses/{bus}/scheduled/{id})."
    )
    deliveryTime: str | None = Field(default=None, description="When it will be appended.")


class AppendResult(BaseModel):
    """The response to an ingestion request: one ack per event, in request order."""

    events: list[Ack]


class EventRecord(BaseModel):
    """A stored event with its offset."""

    offset: int
    event: dict[str, Any] = Field(description="The CloudEvent in JSON (structured) form.")


class EventPage(BaseModel):
    """A page of events read from a bus."""

    bus: str
    events: list[EventRecord]
    next: int = Field(description="Pass as `after` to read the following events.")


class RetentionBody(BaseModel):
    """How long a bus keeps its events; whole segments are dropped."""

    model_config = ConfigDict(extra="forbid")

    maxAge: str | None = Field(default=None, description="ISO 8601 duration, e.g. `P7D`.")
    maxEvents: int | None = Field(default=None, description="Keep at least the newest N events.")


class ArchiveBody(BaseModel):
    """Where and when a bus's old segments move to the archive tier (Parquet files)."""

    model_config = ConfigDict(extra="forbid")

    after: str = Field(description="ISO 8601 duration: archive a closed segment this old.")
    to: str = Field(
        description="A local folder under the server's archive root, or `s3://bucket/prefix`."
    )


class CreateBus(BaseModel):
    """The body of `POST /buses`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="1-63 letters, digits, '.', '_' or '-'.")
    retention: RetentionBody | None = None
    segmentEvents: int | None = Field(
        default=None, description="Events per segment (default: the server's segment size)."
    )
    archive: ArchiveBody | None = Field(
        default=None, description="Move old segments to files (admin scope)."
    )


class BusOut(BaseModel):
    """A bus."""

    name: str
    retention: dict[str, Any] | None
    createdAt: str
    segmentEvents: int | None = None
    archive: dict[str, Any] | None = None


class BusList(BaseModel):
    """Every bus."""

    buses: list[BusOut]


class BusInfoOut(BusOut):
    """A bus with its current figures."""

    firstOffset: int
    lastOffset: int
    segmentCount: int
    sizeBytes: int
    eventsPerSecond: float
    tiers: dict[str, Any] | None = Field(
        default=None,
        description="`live` (partitions) and `archive` (files): events, sizeBytes, segments.",
    )


class ComponentStatus(BaseModel):
    """One component of the server: the database, a service's background task."""

    name: str = Field(description="`database`, or `<service>.<task>` such as `runtime.journal`.")
    up: bool
    state: str = Field(description="`up`, `down`, `running`, `restarting`, `stopped`, `finished`.")
    error: str | None = Field(default=None, description="Why it is not up (its last error).")
    restarts: int = Field(default=0, description="How often its task was restarted.")


class Health(BaseModel):
    """The server's health: `ok` (HTTP 200) or `unavailable` (HTTP 503) with what is down."""

    status: str = Field(description="`ok` or `unavailable`.")
    detail: str | None = Field(
        default=None, description="The components that are down and why (when unavailable)."
    )
    components: list[ComponentStatus] = Field(default_factory=list)


# --- workflows and instances (routes/workflows.py, routes/instances.py) -----


class DefinitionProblem(BaseModel):
    """One problem of a workflow definition."""

    path: str = Field(description="Where in the document, e.g. `states[2].transition`.")
    message: str
    severity: str = Field(default="error", description="`error` or `warning`.")


class InvalidWorkflow(Problem):
    """An invalid definition (422): every problem with its path."""

    errors: list[DefinitionProblem]
    warnings: list[DefinitionProblem] = []


class WorkflowDeployed(BaseModel):
    """A deployed version of a workflow."""

    id: str
    version: str
    warnings: list[DefinitionProblem] = []


class WorkflowOut(BaseModel):
    """A workflow version without its source."""

    id: str
    version: str
    contentType: str
    createdAt: str
    name: str | None = None
    versions: list[str] | None = Field(
        default=None, description="Every stored version in deploy order (`GET /workflows/{id}`)."
    )


class WorkflowList(BaseModel):
    """The latest version of every workflow that is not deleted."""

    workflows: list[WorkflowOut]


class InstanceCreated(BaseModel):
    """A started instance."""

    id: str
    status: InstanceStatus


class BatchStarted(BaseModel):
    """The started instances, in the order of their inputs."""

    instances: list[InstanceCreated]


class ProblemDetails(BaseModel):
    """A DSL 1.0 error as the workflow raised it (RFC 7807 Problem Details)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(
        description="The error type, e.g. `https://serverlessworkflow.io/spec/1.0.0/errors/communication`."
    )
    status: int = Field(description="Its status code (for `call: http`, the HTTP status).")
    title: str | None = Field(default=None, description="A short summary of the error type.")
    detail: str | None = Field(default=None, description="What happened in this instance.")
    instance: str | None = Field(
        default=None,
        description="Where: the JSON Pointer of the faulted task, e.g. `/do/0/raiseError`.",
    )


class InstanceError(BaseModel):
    """Why an instance failed."""

    name: str = Field(description="The error's name (for DSL 1.0, the last segment of its type).")
    code: str | None = Field(default=None, description="Its code (for DSL 1.0, its status).")
    message: str = ""
    state: str | None = Field(
        default=None, description="The state where it happened (for DSL 1.0, the task's pointer)."
    )
    details: ProblemDetails | None = Field(
        default=None,
        description="DSL 1.0 instances only (absent for 0.8): the error as Problem Details.",
    )


class InstanceOut(BaseModel):
    """A workflow instance's status."""

    id: str
    workflowId: str
    version: str
    status: InstanceStatus
    currentState: str | None
    input: Any
    data: Any
    output: Any
    error: InstanceError | None
    startedAt: str
    updatedAt: str
    endedAt: str | None
    parentId: str | None


class InstanceList(BaseModel):
    """A page of instances."""

    instances: list[InstanceOut]
    next: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")


class TimelineOut(BaseModel):
    """What happened to an instance, oldest first, a page at a time."""

    id: str
    entries: list[dict[str, Any]] = Field(
        description="`{kind, key, state, at, run, ...detail}` per entry."
    )
    next: str | None = Field(description="Pass as `after` for the next page; null at the end.")


class TimerOut(BaseModel):
    """A durable timer."""

    id: str
    kind: str = Field(description="Which handler fires it, e.g. `tideflow.delayed_event`.")
    dueAt: str = Field(description="When it is due (RFC 3339).")
    state: str = Field(description="`pending`, `fired` or `cancelled`.")
    payload: Any = None
    idempotencyKey: str | None = None
    scheduleId: str | None = Field(default=None, description="The schedule that started it.")
    attempts: int = Field(description="Firing attempts so far.")
    lastError: str | None = Field(default=None, description="The last handler failure.")
    createdAt: str | None = None
    firedAt: str | None = None


class TimerList(BaseModel):
    """Timers in due order."""

    timers: list[TimerOut]


class ScheduledEvent(BaseModel):
    """An event held for later delivery."""

    timerId: str
    deliveryTime: str = Field(description="When it will be appended (RFC 3339).")
    event: dict[str, Any] = Field(description="The CloudEvent as received.")


class ScheduledList(BaseModel):
    """The events a bus holds, soonest first."""

    bus: str
    scheduled: list[ScheduledEvent]


class CreateToken(BaseModel):
    """The body of `POST /tokens`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="What the token is for (1-100 characters).")
    scopes: list[str] = Field(
        description="admin, deploy, run, read, publish:<bus>, subscribe:<bus> "
        "('*' in a bus name matches any run of characters)."
    )
    rate: str | None = Field(
        default=None,
        description="Its own rate limit: N/s, N/m or N/h (default: the server's --rate-limit).",
    )


class CreateSecretGrant(BaseModel):
    """The body of `POST /secrets/grants`."""

    model_config = ConfigDict(extra="forbid")

    pattern: str = Field(
        description="A workflow id, or sink:<host> for subscription sink credentials; "
        "'*' matches any run of characters."
    )
    secrets: list[str] = Field(
        description="Names of the secrets granted ('*' matches any run of characters)."
    )


class SecretGrantOut(BaseModel):
    """A secret grant: names only, never a value."""

    pattern: str
    secrets: list[str]
    origin: str = Field(
        description="`settings` (--grant-secret, TIDEFLOW_SECRET_GRANTS: fixed) or `api`."
    )


class SecretGrantList(BaseModel):
    """Every grant: the server's settings first, then those made through the API."""

    grants: list[SecretGrantOut]


class TokenOut(BaseModel):
    """An API token, without its text."""

    id: str = Field(description="The public id (the `<id>` of `tf_<id>_<secret>`).")
    name: str
    scopes: list[str]
    createdAt: str
    revokedAt: str | None = None
    rate: str | None = Field(default=None, description="Its own rate limit, if any.")


class TokenCreated(TokenOut):
    """A new token: its text is in `token`, shown this once."""

    token: str = Field(description="The token's text: send it as `Authorization: Bearer …`.")


class TokenList(BaseModel):
    """Every token, oldest first (revoked ones too)."""

    tokens: list[TokenOut]
