"""The bodies of the 1.0 tasks that reach outside: call and run (sub-workflows).

Every one goes through the host's :class:`~tideflow.runtime.effects.Effects`.
A call is a :class:`~tideflow.runtime.effects.FunctionCall` whose ``function``
is a :class:`CallTarget`: ``type``/``operation`` as the function invokers know
them (``http``; ``openapi`` with ``document#operationId``;
``custom`` with ``python:module:function``), so every host runs 1.0 calls
with the invokers it already has.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tideflow.errors import EgressDenied, FunctionCallError
from tideflow.runtime.dsl1._executor import Executor, Scope
from tideflow.runtime.dsl1._scope import evaluate, seconds, template, uri_template
from tideflow.runtime.dsl1.errors import standard_error, status_of
from tideflow.runtime.effects import FunctionCall, SubflowCall
from tideflow.runtime.functions.mcp import PROTOCOL_VERSION
from tideflow.runtime.functions.messaging import DSL1_TYPE as ASYNCAPI_CALL
from tideflow.runtime.functions.scripts import SCRIPT_LANGUAGES
from tideflow.workflow.dsl1._build import build_task
from tideflow.workflow.dsl1.model import Task, thaw
from tideflow.workflow.dsl1.walk import MCP_STDIO, mcp_stdio
from tideflow.workflow.exprtext import is_expression

Outcome = tuple[Any, str | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallTarget:
    """What a 1.0 call asks the function invokers for (the ``function`` of a FunctionCall)."""

    name: str
    """The calling task's name (or the custom function's)."""
    type: str
    """``http``, ``openapi``, ``grpc``, ``asyncapi-call``, ``a2a``, ``mcp`` or ``custom``
    (``python:``)."""
    operation: str
    """``METHOD uri``, ``document#operationId``, ``proto#Service#Method``,
    ``method uri`` (a2a, mcp) or ``python:module:function``."""
    auth_ref: str | None = None
    """Always ``None``: 1.0 authentication travels evaluated in the arguments."""


def _endpoint(endpoint: Any, data: Any, variables: Mapping[str, Any], instance: str) -> tuple[
    str, Any
]:  # fmt: skip
    """The URI and the authentication policy of an endpoint (string or object)."""
    auth = None
    if isinstance(endpoint, Mapping):
        auth = endpoint.get("authentication")
        endpoint = endpoint.get("uri")
    uri = str(endpoint)
    if is_expression(uri):
        uri = str(evaluate(uri, data, variables, instance))
    elif "${" in uri:
        uri = str(template(uri, data, variables, instance))
    return uri_template(uri, data, variables["workflow"]["input"]), auth


def _authentication(ex: Executor, policy: Any, data: Any, variables: Any, instance: str) -> Any:
    if isinstance(policy, Mapping) and set(policy) == {"use"}:
        policy = ex.run.workflow.use_entry("authentications", policy["use"])
    if not isinstance(policy, Mapping):
        return None
    policy = {scheme: _from_secret(ex, body, instance) for scheme, body in policy.items()}
    return template(policy, data, variables, instance)


def authorization_of(policy: Any) -> dict[str, Any] | None:
    """``$authorization`` of an evaluated authentication policy: ``{scheme, parameter}``.

    ``basic`` and ``bearer`` are resolved from the policy itself. An OAuth2 or
    OIDC token is obtained by the host when it calls, and never handed back to
    the interpreter (it would be journaled): its ``parameter`` is ``null``.
    """
    if not isinstance(policy, Mapping) or not policy:
        return None
    scheme, body = next(iter(policy.items()))
    body = body if isinstance(body, Mapping) else {}
    if scheme == "bearer":
        return {"scheme": "Bearer", "parameter": body.get("token")}
    if scheme == "basic":
        pair = f"{body.get('username', '')}:{body.get('password', '')}".encode()
        return {"scheme": "Basic", "parameter": base64.b64encode(pair).decode()}
    if scheme in ("oauth2", "oidc"):
        return {"scheme": "Bearer", "parameter": None}
    return {"scheme": str(scheme).capitalize(), "parameter": None}


def _authorized(ex: Executor, task: Task, policy: Any, variables: Any) -> Any:
    """``variables`` with ``$authorization`` (kept for the task's ``output``/``export``)."""
    descriptor = authorization_of(policy)
    if descriptor is None:
        return variables
    ex.run.authorizations[task.reference] = descriptor
    return {**variables, "authorization": descriptor}


def _from_secret(ex: Executor, body: Any, instance: str) -> Any:
    """A policy's properties, read from the secret it names (``basic: name``, ``{use: name}``).

    A secret given as text (an environment variable) is read as JSON. A
    missing or unreadable secret is an ``authorization`` error (403).
    """
    if isinstance(body, Mapping) and set(body) == {"use"}:
        name = body["use"]
    elif isinstance(body, str):
        name = body
    else:
        return body
    value = ex.run.base["secrets"].get(name)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = None
    if not isinstance(value, Mapping):
        raise standard_error("authorization", instance, f"secret {name!r} holds no policy")
    return value


async def _invoke(
    ex: Executor,
    key: str,
    target: CallTarget,
    arguments: Any,
    task: Task,
    *,
    wait: bool = True,
    limit: float | None = None,
) -> Any:
    call = FunctionCall(
        key=f"{key}/call",
        function=target,
        name=target.name,
        arguments=arguments,
        state=task.name,
        data=arguments,
        invoke="sync" if wait else "async",
        timeout_seconds=limit,
    )
    return await ex.run.effects.call_function(call)


async def run_call(ex: Executor, task: Task, data: Any, key: str, scope: Scope) -> Outcome:
    """``call``: http, openapi, grpc, asyncapi, a2a, mcp, ``use.functions`` or ``python:``."""
    name = str(task.get("call"))
    variables = ex.run.variables(task, scope, input=data)
    args = task.get("with") or {}
    if name == "http":
        uri, auth = _endpoint(args.get("endpoint"), data, variables, task.reference)
        policy = _authentication(ex, auth, data, variables, task.reference)
        variables = _authorized(ex, task, policy, variables)
        evaluated = template(
            {k: v for k, v in args.items() if k != "endpoint"}, data, variables, task.reference
        )
        evaluated["uri"] = uri
        evaluated["authentication"] = policy
        method = str(evaluated.get("method", "get")).upper()
        target = CallTarget(name=task.name, type="http", operation=f"{method} {uri}")
        return await _invoke(ex, key, target, evaluated, task), None
    if name == "openapi":
        document, _ = _endpoint(args["document"]["endpoint"], data, variables, task.reference)
        policy = _authentication(ex, args.get("authentication"), data, variables, task.reference)
        variables = _authorized(ex, task, policy, variables)
        evaluated = template(
            {k: v for k, v in args.items() if k != "document"}, data, variables, task.reference
        )
        operation = f"{document}#{args['operationId']}"
        target = CallTarget(name=task.name, type="openapi", operation=operation)
        return await _invoke(ex, key, target, evaluated, task), None
    if name in ("grpc", "asyncapi"):
        target, evaluated = _messaging_call(ex, task, name, args, data, variables)
        return await _invoke(ex, key, target, evaluated, task), None
    if name in ("a2a", "mcp"):
        return await _agent_call(ex, task, name, args, data, variables, key), None
    if "@" in name and ex.run.workflow.use_entry("functions", name) is None:
        raise standard_error(
            "configuration", task.reference, "catalog functions are not run by Tideflow yet"
        )
    arguments = template(args, data, variables, task.reference)
    if name.startswith("python:"):
        target = CallTarget(name=name, type="custom", operation=name)
        return await _invoke(ex, key, target, arguments, task), None
    return await _custom(ex, task, name, arguments, key, scope), None


def _messaging_call(
    ex: Executor, task: Task, name: str, args: Mapping[str, Any], data: Any, variables: Any
) -> tuple[CallTarget, dict[str, Any]]:
    """The target and evaluated arguments of ``call: grpc`` or ``call: asyncapi``."""
    where = task.reference
    if name == "grpc":
        proto, _ = _endpoint(args["proto"]["endpoint"], data, variables, where)
        service = args["service"]
        policy = _authentication(ex, service.get("authentication"), data, variables, where)
        variables = _authorized(ex, task, policy, variables)
        evaluated = {
            "service": template(
                {k: v for k, v in service.items() if k != "authentication"}, data, variables, where
            ),
            "arguments": template(args.get("arguments") or {}, data, variables, where),
            "authentication": policy,
        }
        operation = f"{proto}#{service['name']}#{args['method']}"
        return CallTarget(name=task.name, type="grpc", operation=operation), evaluated
    document = args.get("document")
    operation_id = args.get("operation")
    if not isinstance(document, Mapping) or "endpoint" not in document or not operation_id:
        raise standard_error(
            "configuration", where, "an asyncapi call needs 'document.endpoint' and 'operation'"
        )
    location, _ = _endpoint(document["endpoint"], data, variables, where)
    policy = _authentication(ex, args.get("authentication"), data, variables, where)
    variables = _authorized(ex, task, policy, variables)
    evaluated = template(
        {k: v for k, v in args.items() if k not in ("document", "authentication")},
        data,
        variables,
        where,
    )
    target = CallTarget(name=task.name, type=ASYNCAPI_CALL, operation=f"{location}#{operation_id}")
    return target, evaluated


_CONFIGURATION_CODES = ("NotSupported", "InvalidOperation", EgressDenied.CODE)


async def _agent_call(
    ex: Executor, task: Task, name: str, args: Mapping[str, Any], data: Any, variables: Any,
    key: str,
) -> Any:  # fmt: skip
    """``call: a2a`` or ``call: mcp`` (streamable HTTP; the stdio transport is not run).

    Failures are ``runtime`` errors, as the DSL asks (with the HTTP status when
    the server answered one), but for the egress policy's refusal
    (``authorization``), arguments Tideflow cannot send (``configuration``) and
    the MCP ``timeout`` (``timeout``)."""
    where = task.reference
    limit: float | None = None
    if name == "a2a":
        endpoint = args.get("agentCard", {}).get("endpoint") or args.get("server")
        uri, auth = _endpoint(endpoint, data, variables, where)
        evaluated: dict[str, Any] = {"method": args["method"]}
        evaluated["agentCard" if "agentCard" in args else "server"] = uri
    else:
        if mcp_stdio(args):
            raise standard_error("configuration", where, MCP_STDIO)
        http = args["transport"]["http"]
        uri, auth = _endpoint(http["endpoint"], data, variables, where)
        evaluated = {"method": args["method"], "endpoint": uri,
                     "protocolVersion": args.get("protocolVersion") or PROTOCOL_VERSION,
                     "headers": template(http.get("headers") or {}, data, variables, where),
                     "client": thaw(args.get("client"))}  # fmt: skip
        if args.get("timeout") is not None:
            limit = seconds(args["timeout"], data, variables, where)
    policy = _authentication(ex, auth, data, variables, where)
    variables = _authorized(ex, task, policy, variables)
    evaluated["authentication"] = policy
    if args.get("parameters") is not None:
        evaluated["parameters"] = template(args["parameters"], data, variables, where)
    target = CallTarget(name=task.name, type=name, operation=f"{args['method']} {uri}")
    try:
        return await _invoke(ex, key, target, evaluated, task, limit=limit)
    except FunctionCallError as exc:
        if exc.code in _CONFIGURATION_CODES:
            raise
        raise standard_error("runtime", where, str(exc), status_of(exc.code)) from None


async def _custom(
    ex: Executor, task: Task, name: str, arguments: Any, key: str, scope: Scope
) -> Any:
    """A function of ``use.functions``: its task runs with the call's arguments as input."""
    definition = ex.run.workflow.use_entry("functions", name)
    if definition is None:
        raise standard_error("configuration", task.reference, f"no function named {name!r}")
    function = build_task(name, definition, task.reference)
    output, _ = await ex.run_task(function, arguments, key, scope)
    return output


_RESULT_PARTS = {"stdout": "stdout", "stderr": "stderr", "code": "code"}


async def _run_script(
    ex: Executor,
    task: Task,
    process: Mapping[str, Any],
    script: Mapping[str, Any],
    data: Any,
    key: str,
    scope: Scope,
) -> Any:
    """``run: script`` (Python or JavaScript): the code runs in a bounded process of the
    host (:mod:`tideflow.runtime.functions.scripts`); ``return`` picks the output.

    Inline ``code`` is handed over as written (never evaluated); a ``source``
    is handed over as its evaluated endpoint (``{uri, authentication}``) and
    read by the host when it runs the script (its text is journaled with the
    call's result, not with the definition)."""
    where = task.reference
    language = script.get("language")
    operation = SCRIPT_LANGUAGES.get(str(language))
    if operation is None:
        raise standard_error("configuration", where, f"{language!r} scripts are not run here")
    variables = ex.run.variables(task, scope, input=data)
    evaluated: dict[str, Any] = {"language": str(language)}
    if isinstance(script.get("code"), str):
        evaluated["code"] = script["code"]  # the code itself is never evaluated
    else:
        resource = script.get("source")
        endpoint = resource.get("endpoint") if isinstance(resource, Mapping) else None
        if endpoint is None:
            raise standard_error("configuration", where, "the script has neither code nor source")
        uri, policy = _endpoint(endpoint, data, variables, where)
        source: dict[str, Any] = {"uri": uri}
        if (auth := _authentication(ex, policy, data, variables, where)) is not None:
            source["authentication"] = auth
        evaluated["source"] = source
    evaluated |= template(
        {k: script[k] for k in ("stdin", "arguments", "environment") if k in script},
        data, variables, task.reference,
    )  # fmt: skip
    target = CallTarget(name=task.name, type="script", operation=operation)
    wait = process.get("await", True) is not False
    result = await _invoke(ex, key, target, evaluated, task, wait=wait)
    if not wait:
        return data
    mode = str(process.get("return", "stdout"))
    if mode == "all":
        return result
    if mode == "none":
        return None
    return result.get(_RESULT_PARTS.get(mode, "stdout")) if isinstance(result, Mapping) else None


async def run_run(ex: Executor, task: Task, data: Any, key: str, scope: Scope) -> Outcome:
    """``run``: ``workflow`` through the host, ``script`` as a call of the host;
    ``shell`` and ``container`` are not run."""
    process = task.get("run")
    subflow = process.get("workflow")
    if subflow is None:
        kind = next(k for k in ("container", "shell", "script") if k in process)
        script = process.get("script")
        if kind != "script" or not isinstance(script, Mapping):
            raise standard_error("configuration", task.reference,
                                 f"run.{kind} is not run by Tideflow")  # fmt: skip
        return await _run_script(ex, task, process, script, data, key, scope), None
    variables = ex.run.variables(task, scope, input=data)
    given = subflow.get("input")
    child_input = data if given is None else template(given, data, variables, task.reference)
    version = subflow.get("version")
    wait = process.get("await", True)
    call = SubflowCall(
        key=f"{key}/subflow",
        workflow_id=f"{subflow['namespace']}.{subflow['name']}",
        version=None if version in (None, "latest") else str(version),
        input=child_input,
        invoke="sync" if wait else "async",
    )
    output = await ex.run.effects.run_subflow(call)
    return (output if wait else data), None
