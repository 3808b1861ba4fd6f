"""The structure of a Serverless Workflow DSL 1.0 document, as declarative specs.

Written from the 1.0 JSON schema (``schema/workflow.yaml`` of the
specification) with Tideflow's own checker (:mod:`tideflow.workflow._schema`),
so every problem carries its path and says what is wrong in our words. While
walking, the specs record what the semantic pass needs: expressions to
compile, and names that must resolve in ``use`` (errors, retries, timeouts,
authentications, functions, catalogs). Flow directives (``then``) are checked
here, because a target must be a task of the same list.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tideflow.workflow._schema import (
    Anything,
    Bool,
    Context,
    Either,
    Enum,
    Expr,
    ListOf,
    Number,
    Obj,
    Path,
    Reference,
    Spec,
    Str,
    Template,
    json_type,
    quoted,
    suggest,
)

SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
DNS_LABEL = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
ISO_DURATION = re.compile(
    r"^P(?!$)(\d+(?:\.\d+)?Y)?(\d+(?:\.\d+)?M)?(\d+(?:\.\d+)?W)?(\d+(?:\.\d+)?D)?"
    r"(T(?=\d)(\d+(?:\.\d+)?H)?(\d+(?:\.\d+)?M)?(\d+(?:\.\d+)?S)?)?$"
)
RUNTIME_EXPRESSION = re.compile(r"^\s*\$\{.+\}\s*$", re.DOTALL)
URI = re.compile(r"^[A-Za-z][A-Za-z0-9+\-.]*://.*")
FLOW_DIRECTIVES = ("continue", "exit", "end")
TASK_KINDS = (
    "call", "do", "emit", "for", "fork", "listen", "raise", "run", "set", "switch", "try", "wait",
)  # fmt: skip
"""Task types, told apart by the one property that names each."""
BUILTIN_CALLS = ("http", "openapi", "grpc", "asyncapi", "a2a", "mcp")
PROCESS_KINDS = ("shell", "container")


@dataclass(frozen=True)
class Pattern(Spec):
    """A string matching a regular expression."""

    regex: re.Pattern[str]
    what: str
    expects = "a string"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str)

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        if not isinstance(value, str):
            ctx.error(path, f"must be {self.what} (a string), not {json_type(value)}")
        elif not self.regex.match(value):
            ctx.error(path, f"'{value}' is not {self.what}")


class Integer(Spec):
    """A JSON integer."""

    expects = "an integer"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        if not self.accepts(value):
            ctx.error(path, f"must be an integer, not {json_type(value)}")


class StringExpr(Spec):
    """A string that is a runtime expression when written ``${ }`` (templates allowed)."""

    expects = "a string"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str)

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        if not isinstance(value, str):
            ctx.error(path, f"must be a string, not {json_type(value)}")
        elif "${" in value:
            ctx.expressions.append((path, value, False))


class Duration1(Spec):
    """A 1.0 duration: ISO 8601 text, ``{days, hours, ...}`` or a runtime expression."""

    expects = "a duration"
    _UNITS = ("days", "hours", "minutes", "seconds", "milliseconds")

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str | Mapping)

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        if isinstance(value, str):
            if RUNTIME_EXPRESSION.match(value):
                ctx.expressions.append((path, value, True))
            elif not ISO_DURATION.match(value.strip()):
                ctx.error(path, f"'{value}' is not an ISO 8601 duration (examples: PT30S, P2D)")
            return
        if not isinstance(value, Mapping):
            ctx.error(
                path, f"must be a duration (ISO 8601 text or an object), not {json_type(value)}"
            )
            return
        if not value:
            ctx.error(path, f"a duration needs one of {quoted(self._UNITS)}")
        for key, item in value.items():
            if key not in self._UNITS:
                ctx.error((*path, str(key)), f"not a duration unit{suggest(str(key), self._UNITS)}")
            elif not isinstance(item, int) or isinstance(item, bool):
                ctx.error((*path, key), f"must be an integer, not {json_type(item)}")


@dataclass(frozen=True)
class UseRef(Spec):
    """A name defined under ``use.<section>``."""

    section: str

    expects = "a string"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str)

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        if not isinstance(value, str) or not value.strip():
            ctx.error(path, f"must name an entry of use.{self.section}")
        else:
            ctx.references.append(Reference(self.section, value, path))


@dataclass(frozen=True)
class MapOf(Spec):
    """An object whose values all follow one spec (``use.errors``, ``use.retries``, ...)."""

    item: Spec
    expects = "an object"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, Mapping)

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        if not isinstance(value, Mapping):
            ctx.error(path, f"must be an object, not {json_type(value)}")
            return
        for key, item in value.items():
            self.item.check(item, (*path, str(key)), ctx)


class Lazy(Spec):
    """Breaks the recursion of task lists inside tasks (filled in below)."""

    target: Spec | None = None

    def accepts(self, value: Any) -> bool:
        return self.target is not None and self.target.accepts(value)

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        assert self.target is not None
        self.target.check(value, path, ctx)


TASK_LIST = Lazy()
TASK = Lazy()
DURATION = Duration1()
EXPR = Expr()
SCHEMA = Obj(
    "a schema",
    {"format": Str(), "document": Anything(), "resource": Anything()},
    exactly_one=(("document", "resource"),),
)
TIMEOUT = Obj("a timeout", {"after": DURATION}, required=("after",))
TIMEOUT_OR_REF = Either((TIMEOUT, UseRef("timeouts")))


def _filter(title: str, keyword: str) -> Obj:
    return Obj(title, {"schema": SCHEMA, keyword: Either((EXPR, Template(object_only=True)))})


INPUT = _filter("an input", "from")
OUTPUT = _filter("an output", "as")
EXPORT = _filter("an export", "as")

SECRET_OR = Str()
BASIC = Obj(
    "a basic authentication", {"username": StringExpr(), "password": StringExpr(), "use": Str()}
)
BEARER = Obj("a bearer authentication", {"token": StringExpr(), "use": Str()})
OAUTH = Obj("an OAuth2 / OIDC authentication", {}, extra=True)
AUTH_POLICY = Obj(
    "an authentication policy",
    {
        "basic": Either((BASIC, SECRET_OR)),
        "bearer": Either((BEARER, SECRET_OR)),
        "digest": Either((BASIC, SECRET_OR)),
        "oauth2": Either((OAUTH, SECRET_OR)),
        "oidc": Either((OAUTH, SECRET_OR)),
        "certificate": Either((OAUTH, SECRET_OR)),
    },
    exactly_one=(("basic", "bearer", "digest", "oauth2", "oidc", "certificate"),),
)
AUTHENTICATION = Either(
    (Obj("an authentication", {"use": UseRef("authentications")}, required=("use",)),),
)


def _authentication(value: Mapping[str, Any], path: Path, ctx: Context) -> None:
    auth = value.get("authentication")
    if isinstance(auth, Mapping) and "use" in auth and len(auth) == 1:
        UseRef("authentications").check(auth["use"], (*path, "authentication", "use"), ctx)
    elif auth is not None:
        AUTH_POLICY.check(auth, (*path, "authentication"), ctx)


ENDPOINT_OBJ = Obj("an endpoint", {"uri": StringExpr(), "authentication": Anything()},
                   required=("uri",), rules=(_authentication,))  # fmt: skip
ENDPOINT = Either((StringExpr(), ENDPOINT_OBJ))
RESOURCE = Obj(
    "an external resource", {"name": Str(), "endpoint": ENDPOINT}, required=("endpoint",)
)

ERROR = Obj(
    "an error",
    {
        "type": StringExpr(),
        "status": Either((Integer(), Pattern(RUNTIME_EXPRESSION, "a runtime expression"))),
        "instance": StringExpr(),
        "title": StringExpr(),
        "detail": StringExpr(),
    },
    required=("type", "status"),
)
ERROR_FILTER = Obj(
    "an error filter",
    {"type": Str(), "status": Integer(), "instance": Str(), "title": Str(), "details": Str(),
     "detail": Str()},
)  # fmt: skip
BACKOFF = Obj(
    "a back-off",
    {"constant": Obj("a constant back-off", {}, extra=True),
     "linear": Obj("a linear back-off", {"increment": DURATION}, extra=True),
     "exponential": Obj("an exponential back-off", {"factor": Number(), "multiplier": Number(),
                                                    "maxDelay": DURATION}, extra=True)},
    exactly_one=(("constant", "linear", "exponential"),),
)  # fmt: skip
RETRY = Obj(
    "a retry policy",
    {
        "when": EXPR,
        "exceptWhen": EXPR,
        "delay": DURATION,
        "backoff": BACKOFF,
        "limit": Obj(
            "a retry limit",
            {"attempt": Obj("an attempt limit", {"count": Integer(), "duration": DURATION}),
             "duration": DURATION},
        ),
        "jitter": Obj("a jitter", {"from": DURATION, "to": DURATION}, required=("from", "to")),
    },
)  # fmt: skip
EVENT_PROPERTIES = Obj(
    "event properties",
    {"id": StringExpr(), "source": StringExpr(), "type": StringExpr(), "time": StringExpr(),
     "subject": StringExpr(), "datacontenttype": StringExpr(), "dataschema": StringExpr(),
     "data": Template()},
    extra=True,
)  # fmt: skip
CORRELATION = MapOf(Obj("a correlation key", {"from": EXPR, "expect": StringExpr()},
                        required=("from",)))  # fmt: skip
EVENT_FILTER = Obj(
    "an event filter", {"with": EVENT_PROPERTIES, "correlate": CORRELATION}, required=("with",)
)
CONSUMPTION = Lazy()
_CONSUMPTION = Obj(
    "an event consumption strategy",
    {
        "all": ListOf(EVENT_FILTER),
        "any": ListOf(EVENT_FILTER),
        "one": EVENT_FILTER,
        "until": Either((EXPR, CONSUMPTION)),
    },
    exactly_one=(("all", "any", "one"),),
)
CONSUMPTION.target = _CONSUMPTION

BASE_FIELDS: dict[str, Spec] = {
    "if": EXPR,
    "input": INPUT,
    "output": OUTPUT,
    "export": EXPORT,
    "timeout": TIMEOUT_OR_REF,
    "then": Str(),  # its target is checked by the enclosing task list
    "metadata": Obj("metadata", {}, extra=True),
}
HEADERS = Either((Pattern(RUNTIME_EXPRESSION, "a runtime expression"), Template(object_only=True)))
CALL_OUTPUT = Enum(("raw", "content", "response"))
HTTP_WITH = Obj(
    "the arguments of an HTTP call",
    {"method": Str(), "endpoint": ENDPOINT, "headers": HEADERS, "body": Template(),
     "query": HEADERS, "output": CALL_OUTPUT, "redirect": Bool()},
    required=("method", "endpoint"),
)  # fmt: skip
OPENAPI_WITH = Obj(
    "the arguments of an OpenAPI call",
    {"document": RESOURCE, "operationId": Str(), "parameters": Template(object_only=True),
     "authentication": Anything(), "output": CALL_OUTPUT, "redirect": Bool()},
    required=("document", "operationId"), rules=(_authentication,),
)  # fmt: skip
GRPC_WITH = Obj(
    "the arguments of a gRPC call",
    {"proto": RESOURCE, "method": Str(), "arguments": Template(object_only=True),
     "service": Obj("a gRPC service", {"name": Str(), "host": Str(), "port": Integer(),
                                       "authentication": Anything()},
                    required=("name", "host"), rules=(_authentication,))},
    required=("proto", "service", "method"),
)  # fmt: skip
PARAMETERS = Either(
    (Pattern(RUNTIME_EXPRESSION, "a runtime expression"), Template(object_only=True))
)
A2A_METHODS = (
    "message/send", "message/stream", "tasks/get", "tasks/list", "tasks/cancel",
    "tasks/resubscribe", "tasks/pushNotificationConfig/set", "tasks/pushNotificationConfig/get",
    "tasks/pushNotificationConfig/list", "tasks/pushNotificationConfig/delete",
    "agent/getAuthenticatedExtendedCard",
)  # fmt: skip
MCP_METHODS = (
    "tools/list", "tools/call", "prompts/list", "prompts/get", "resources/list",
    "resources/read", "resources/templates/list",
)  # fmt: skip


def _a2a_target(value: Mapping[str, Any], path: Path, ctx: Context) -> None:
    if "agentCard" not in value and "server" not in value:
        ctx.error(path, "an A2A call needs 'agentCard' or 'server' (the agent to call)")


A2A_WITH = Obj(
    "the arguments of an A2A call",
    {"method": Enum(A2A_METHODS), "agentCard": RESOURCE, "server": ENDPOINT,
     "parameters": PARAMETERS},
    required=("method",), rules=(_a2a_target,),
)  # fmt: skip
STRINGS = MapOf(StringExpr())
MCP_TRANSPORT = Obj(
    "an MCP transport",
    {"http": Obj("an MCP HTTP transport", {"endpoint": ENDPOINT, "headers": STRINGS},
                 required=("endpoint",), extra=True),
     "stdio": Obj("an MCP stdio transport", {"command": StringExpr(), "arguments": ListOf(Str()),
                                            "environment": MapOf(Str())}, required=("command",),
                  extra=True),
     "options": MapOf(Str())},
    exactly_one=(("http", "stdio"),), extra=True,
)  # fmt: skip
MCP_WITH = Obj(
    "the arguments of an MCP call",
    {"protocolVersion": Str(), "method": Enum(MCP_METHODS), "parameters": PARAMETERS,
     "timeout": DURATION, "transport": MCP_TRANSPORT,
     "client": Obj("an MCP client", {"name": Str(), "version": Str(), "description": Str()},
                   required=("name", "version"), extra=True)},
    required=("method", "transport"), extra=True,  # the schema closes none of these objects
)  # fmt: skip
OPEN_WITH = Template(object_only=True)
CALL_WITH = {
    "http": HTTP_WITH, "openapi": OPENAPI_WITH, "grpc": GRPC_WITH, "a2a": A2A_WITH,
    "mcp": MCP_WITH,
}  # fmt: skip
MCP_STDIO = (
    "an MCP stdio transport starts the server as a process on the host, which Tideflow "
    "does not do (run the server on its own and use transport.http)"
)
"""Why ``call: mcp`` over ``transport.stdio`` is not run."""


def mcp_stdio(arguments: Any) -> bool:
    """Whether the arguments of a ``call: mcp`` choose the stdio transport."""
    transport = arguments.get("transport") if isinstance(arguments, Mapping) else None
    return isinstance(transport, Mapping) and "stdio" in transport


def _call(value: Mapping[str, Any], path: Path, ctx: Context) -> None:
    name = value.get("call")
    if not isinstance(name, str) or not name.strip():
        return  # reported by the field spec
    spec = CALL_WITH.get(name)
    arguments = value.get("with")
    if name in BUILTIN_CALLS and arguments is None:
        ctx.error((*path, "with"), f"missing: a '{name}' call needs 'with'")
    if arguments is not None:
        (spec or OPEN_WITH).check(arguments, (*path, "with"), ctx)
    if name in BUILTIN_CALLS:
        if name == "mcp" and mcp_stdio(arguments):
            where = (*path, "with", "transport", "stdio")
            ctx.references.append(Reference("unsupported-call", MCP_STDIO, where))
    elif name.startswith("python:"):
        if name.count(":") != 2 or not all(name.split(":")[1:]):
            ctx.error((*path, "call"), f"'{name}' is not python:module:function")
    elif "@" in name:
        ctx.references.append(Reference("catalogs", name.rpartition("@")[2], (*path, "call")))
    elif not URI.match(name):
        ctx.references.append(Reference("functions", name, (*path, "call")))


def _set(value: Mapping[str, Any], path: Path, ctx: Context) -> None:
    body = value.get("set")
    if isinstance(body, str):
        if RUNTIME_EXPRESSION.match(body):
            ctx.expressions.append(((*path, "set"), body, True))
        else:
            ctx.error((*path, "set"), "must be an object or a runtime expression '${ ... }'")
    elif isinstance(body, Mapping):
        if not body:
            ctx.error((*path, "set"), "must set at least one property")
        Template().check(body, (*path, "set"), ctx)
    else:
        ctx.error(
            (*path, "set"), f"must be an object or a runtime expression, not {json_type(body)}"
        )


SWITCH_CASE = Obj("a switch case", {"when": EXPR, "then": Str()}, required=("then",))
CATCH = Obj(
    "a catch clause",
    {"errors": Obj("an error selection", {"with": ERROR_FILTER}), "as": Str(), "when": EXPR,
     "exceptWhen": EXPR, "retry": Either((RETRY, UseRef("retries"))), "do": TASK_LIST},
)  # fmt: skip
SCRIPT = Obj(
    "a script",
    {"language": Str(), "code": Str(), "source": RESOURCE, "stdin": StringExpr(),
     "arguments": Anything(), "environment": Template(object_only=True)},
    required=("language",), exactly_one=(("code", "source"),),
)  # fmt: skip
PROCESS = Obj("a process", {}, extra=True)
SUBFLOW = Obj(
    "a sub-workflow",
    {"namespace": Pattern(DNS_LABEL, "a DNS label"), "name": Pattern(DNS_LABEL, "a DNS label"),
     "version": Str(), "input": Template(object_only=True)},
    required=("namespace", "name"),
)  # fmt: skip


def _run(value: Mapping[str, Any], path: Path, ctx: Context) -> None:
    for kind in PROCESS_KINDS:
        if kind in value:
            ctx.references.append(Reference("process", kind, (*path, kind)))
    script = value.get("script")
    if isinstance(script, Mapping) and isinstance(script.get("language"), str):
        ctx.references.append(
            Reference("script", script["language"], (*path, "script", "language"))
        )


RUN = Obj(
    "a run",
    {"await": Bool(), "return": Enum(("stdout", "stderr", "code", "all", "none")),
     "container": PROCESS, "shell": PROCESS, "script": SCRIPT, "workflow": SUBFLOW},
    exactly_one=(("container", "script", "shell", "workflow"),), rules=(_run,),
)  # fmt: skip
FOREACH = Obj(
    "a foreach iterator",
    {"item": Str(), "at": Str(), "do": TASK_LIST, "output": OUTPUT, "export": EXPORT},
)  # fmt: skip
BODIES: dict[str, dict[str, Spec]] = {
    "call": {"call": Str(), "with": Anything()},
    "do": {"do": TASK_LIST},
    "emit": {"emit": Obj("an emit", {"event": Obj("an event", {"with": EVENT_PROPERTIES},
                                                  required=("with",), extra=True)},
                         required=("event",))},
    "for": {"for": Obj("a loop", {"each": Str(), "in": EXPR, "at": Str()}, required=("in",)),
            "while": EXPR, "do": TASK_LIST},
    "fork": {"fork": Obj("a fork", {"branches": TASK_LIST, "compete": Bool()},
                         required=("branches",))},
    "listen": {"listen": Obj("a listen", {"to": CONSUMPTION, "read": Enum(("data", "envelope",
                                                                          "raw"))},
                             required=("to",)), "foreach": FOREACH},
    "raise": {"raise": Obj("a raise", {"error": Either((ERROR, UseRef("errors")))},
                           required=("error",))},
    "run": {"run": RUN},
    "set": {"set": Anything()},
    "switch": {"switch": ListOf(Anything(), min_items=1)},
    "try": {"try": TASK_LIST, "catch": CATCH},
    "wait": {"wait": DURATION},
}  # fmt: skip
RULES = {"call": (_call,), "set": (_set,)}
REQUIRED = {"for": ("for", "do"), "try": ("try", "catch")}
TASKS: dict[str, Obj] = {
    kind: Obj(f"a {kind} task", {**BASE_FIELDS, **fields},
              required=REQUIRED.get(kind, (kind,)), rules=RULES.get(kind, ()))
    for kind, fields in BODIES.items()
}  # fmt: skip


def task_kind(task: Mapping[str, Any]) -> str | None:
    """The type of a task: the one of :data:`TASK_KINDS` it names (``for``, ``try`` first)."""
    for kind in ("for", "try"):
        if kind in task:
            return kind
    return next((kind for kind in TASK_KINDS if kind in task), None)


class TaskSpec(Spec):
    """One task: its type told apart by the property that names it."""

    expects = "an object"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, Mapping)

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        if not isinstance(value, Mapping):
            ctx.error(path, f"must be a task (an object), not {json_type(value)}")
            return
        kind = task_kind(value)
        if kind is None:
            ctx.error(path, f"a task needs one of {quoted(TASK_KINDS)}")
            return
        others = [
            k for k in TASK_KINDS if k in value and k != kind and not (kind == "for" and k == "do")
        ]
        if others:
            ctx.error(
                (*path, others[0]),
                f"a task is one of its types: '{kind}' or '{others[0]}', not both",
            )
            return
        TASKS[kind].check(value, path, ctx)


class TaskListSpec(Spec):
    """An ordered list of ``{name: task}`` items; ``then`` targets name tasks of the same list."""

    expects = "an array"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, list)

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        if not isinstance(value, list):
            ctx.error(
                path, f"must be a task list (an array of {{name: task}}), not {json_type(value)}"
            )
            return
        names: list[str] = []
        for index, item in enumerate(value):
            if not isinstance(item, Mapping) or len(item) != 1:
                ctx.error(
                    (*path, index), "must be an object with exactly one property: the task's name"
                )
                continue
            name, task = next(iter(item.items()))
            if name in names:
                ctx.error((*path, index, name), f"task '{name}' is named twice in this list")
            names.append(str(name))
            TASK.check(task, (*path, index, str(name)), ctx)
        self._flow(value, names, path, ctx)

    def _flow(self, value: list[Any], names: list[str], path: Path, ctx: Context) -> None:
        for index, item in enumerate(value):
            if not isinstance(item, Mapping) or len(item) != 1:
                continue
            name, task = next(iter(item.items()))
            if not isinstance(task, Mapping):
                continue
            where = (*path, index, str(name))
            _target(task.get("then"), (*where, "then"), names, ctx)
            cases = task.get("switch") if task_kind(task) == "switch" else None
            for number, case in enumerate(cases if isinstance(cases, list) else []):
                self._case(case, (*where, "switch", number), names, ctx)

    def _case(self, case: Any, path: Path, names: list[str], ctx: Context) -> None:
        if not isinstance(case, Mapping) or len(case) != 1:
            ctx.error(path, "must be an object with exactly one property: the case's name")
            return
        label, body = next(iter(case.items()))
        SWITCH_CASE.check(body, (*path, str(label)), ctx)
        if isinstance(body, Mapping):
            _target(body.get("then"), (*path, str(label), "then"), names, ctx)


def _target(then: Any, path: Path, names: list[str], ctx: Context) -> None:
    if not isinstance(then, str) or then in FLOW_DIRECTIVES or then in names:
        return
    hint = suggest(then, [*names, *FLOW_DIRECTIVES])
    ctx.error(
        path,
        f"'{then}' is not a task of this list nor one of {quoted(FLOW_DIRECTIVES)}{hint}",
    )


TASK.target = TaskSpec()
TASK_LIST.target = TaskListSpec()


EXTENSION = Obj(
    "an extension",
    {"extend": Enum(("call", "composite", "emit", "extension", "for", "listen", "raise", "run",
                     "set", "switch", "try", "wait", "all")),
     "when": EXPR, "before": TASK_LIST, "after": TASK_LIST},
    required=("extend",),
)  # fmt: skip


class ExtensionList(Spec):
    """``use.extensions``: a list of ``{name: extension}``."""

    expects = "an array"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, list)

    def check(self, value: Any, path: Path, ctx: Context) -> None:
        if not isinstance(value, list):
            ctx.error(path, f"must be an array of {{name: extension}}, not {json_type(value)}")
            return
        for index, item in enumerate(value):
            if not isinstance(item, Mapping) or len(item) != 1:
                ctx.error((*path, index), "must be an object with exactly one property: its name")
                continue
            name, body = next(iter(item.items()))
            EXTENSION.check(body, (*path, index, str(name)), ctx)


USE = Obj(
    "the use section",
    {"authentications": MapOf(AUTH_POLICY), "errors": MapOf(ERROR),
     "extensions": ExtensionList(), "functions": MapOf(TASK), "retries": MapOf(RETRY),
     "secrets": ListOf(Str(), unique=True), "timeouts": MapOf(TIMEOUT),
     "catalogs": MapOf(Obj("a catalog", {"endpoint": ENDPOINT}, required=("endpoint",)))},
)  # fmt: skip
DOCUMENT = Obj(
    "the document section",
    {"dsl": Pattern(SEMVER, "a semantic version"), "namespace": Pattern(DNS_LABEL, "a DNS label"),
     "name": Pattern(DNS_LABEL, "a DNS label"), "version": Pattern(SEMVER, "a semantic version"),
     "title": Str(), "summary": Str(min_len=0), "tags": Obj("tags", {}, extra=True),
     "metadata": Obj("metadata", {}, extra=True)},
    required=("dsl", "namespace", "name", "version"),
)  # fmt: skip
SCHEDULE = Obj(
    "a schedule",
    {"every": DURATION, "cron": Str(), "after": DURATION, "on": CONSUMPTION},
    exactly_one=(("every", "cron", "after", "on"),),
)
EVALUATE = Obj(
    "an evaluation setting",
    {"language": Enum(("jq",)), "mode": Enum(("strict", "loose"))},
)
WORKFLOW = Obj(
    "a DSL 1.0 workflow",
    {"document": DOCUMENT, "input": INPUT, "use": USE, "do": TASK_LIST, "timeout": TIMEOUT_OR_REF,
     "output": OUTPUT, "schedule": SCHEDULE, "evaluate": EVALUATE},
    required=("document", "do"),
)  # fmt: skip
