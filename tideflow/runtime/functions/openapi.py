"""OpenAPI 3 documents: load them, find an operation, map arguments onto it.

A ``rest`` function's ``operation`` is ``<document>#<operationId>``. The
document (JSON or YAML) comes from a path (relative paths resolve against the
workflow's folder), a ``file://`` URI or an ``http(s)://`` URL. Arguments are
mapped by name onto the parameters the operation declares (``path``,
``query``, ``header``, ``cookie``); see :func:`build_request` for the body rule.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import yaml

from tideflow.runtime.functions.types import call_error

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True, slots=True)
class Parameter:
    """One declared parameter of an operation."""

    name: str
    location: str
    required: bool = False


@dataclass(frozen=True, slots=True)
class Operation:
    """An operation found in an OpenAPI document, ready to be called."""

    operation_id: str
    method: str
    path: str
    parameters: tuple[Parameter, ...] = ()
    has_body: bool = False
    servers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Document:
    """A loaded OpenAPI document and the operations it declares by id."""

    source: str
    operations: Mapping[str, Operation] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RequestParts:
    """What :func:`build_request` makes of an operation and arguments."""

    method: str
    url: str
    params: list[tuple[str, str]]
    headers: dict[str, str]
    cookies: dict[str, str]
    body: Any = None
    has_body: bool = False


def split_operation(operation: str) -> tuple[str, str]:
    """Split ``doc.yaml#opId`` into its document reference and operation id."""
    doc, sep, op_id = operation.rpartition("#")
    if not sep or not doc or not op_id:
        raise call_error(
            f"operation {operation!r} is not '<OpenAPI document>#<operationId>'",
            code="InvalidOperation",
        )
    return doc, op_id


def resolve_location(reference: str, base_dir: Path | None) -> str:
    """Turn a document reference into an absolute URL or file path."""
    if reference.startswith(("http://", "https://")):
        return reference
    # SonataFlow's classpath root is src/main/resources, where its workflows live:
    # ``classpath:specs/x.yaml`` is the workflow folder's specs/x.yaml
    path_text = reference.removeprefix("file://")
    if path_text.startswith("classpath:"):
        path_text = path_text.removeprefix("classpath:").lstrip("/")
    path = Path(path_text)
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return str(path.resolve())


def parse_document(text: str, source: str) -> Document:
    """Parse an OpenAPI document (JSON or YAML) and index its operations."""
    try:
        raw = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        # The line only: the parser's message quotes the document's text.
        raise call_error(
            f"OpenAPI document {source} is neither JSON nor YAML ({_where(exc)})",
            code="InvalidDocument",
        ) from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("paths"), dict):
        raise call_error(f"OpenAPI document {source} has no 'paths'", code="InvalidDocument")
    base = source if source.startswith(("http://", "https://")) else None
    doc_servers = _servers(raw.get("servers"), base) or _swagger2_servers(raw, base)
    operations: dict[str, Operation] = {}
    for path, item in raw["paths"].items():
        if not isinstance(item, dict):
            continue
        item = _deref(raw, item)
        shared = [_parameter(raw, p) for p in item.get("parameters", [])]
        path_servers = _servers(item.get("servers"), base) or doc_servers
        for method in _METHODS:
            op = item.get(method)
            if not isinstance(op, dict) or "operationId" not in op:
                continue
            own = [_parameter(raw, p) for p in op.get("parameters", [])]
            operations[op["operationId"]] = Operation(
                operation_id=op["operationId"],
                method=method.upper(),
                path=path,
                parameters=_merge_parameters(shared, own),
                has_body="requestBody" in op,
                servers=_servers(op.get("servers"), base) or path_servers,
            )
    return Document(source=source, operations=operations)


def _where(exc: json.JSONDecodeError | yaml.YAMLError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"line {exc.lineno}"
    mark = getattr(exc, "problem_mark", None)
    return f"line {mark.line + 1}" if mark is not None else "not a document"


def _swagger2_servers(raw: Mapping[str, Any], base: str | None) -> tuple[str, ...]:
    """Swagger 2.0's ``schemes``, ``host`` and ``basePath`` as one server URL."""
    if str(raw.get("swagger", "")) != "2.0" or not (raw.get("host") or base):
        return ()
    origin = urlsplit(base) if base else None
    schemes = raw.get("schemes") or ([origin.scheme] if origin else ["https"])
    host = raw.get("host") or (origin.netloc if origin else "")
    return (f"{schemes[0]}://{host}{raw.get('basePath', '')}".rstrip("/"),)


def find_operation(document: Document, operation_id: str) -> Operation:
    """The operation with ``operation_id``, or a clear error."""
    found = document.operations.get(operation_id)
    if found is None:
        known = ", ".join(sorted(document.operations)) or "none"
        raise call_error(
            f"OpenAPI document {document.source} has no operationId {operation_id!r} "
            f"(it has: {known})",
            code="UnknownOperation",
        )
    return found


def build_request(operation: Operation, arguments: Mapping[str, Any], server: str) -> RequestParts:
    """Map ``arguments`` onto ``operation``.

    Arguments named like a declared parameter go where the document declares
    it. Of the rest: an argument named ``body`` is the JSON body by itself when
    it is the only one left; otherwise all remaining arguments together form a
    JSON object body. Remaining arguments are an error for operations that
    cannot carry a body (no ``requestBody`` and not POST/PUT/PATCH).
    """
    remaining = dict(arguments)
    path = operation.path
    parts = RequestParts(operation.method, "", [], {}, {})
    for param in operation.parameters:
        if param.name not in remaining:
            if param.required:
                raise call_error(
                    f"operation {operation.operation_id!r} needs the {param.location} "
                    f"parameter {param.name!r}: add it to the function's arguments",
                    code="InvalidArguments",
                )
            continue
        value = remaining.pop(param.name)
        if param.location == "path":
            path = path.replace("{" + param.name + "}", quote(_text(value), safe=""))
        elif param.location == "query":
            values = value if isinstance(value, list) else [value]
            parts.params.extend((param.name, _text(v)) for v in values if v is not None)
        elif param.location == "header":
            parts.headers[param.name] = _text(value)
        elif param.location == "cookie":
            parts.cookies[param.name] = _text(value)
    body, has_body = _body(operation, remaining)
    url = server.rstrip("/") + "/" + path.lstrip("/")
    return RequestParts(
        parts.method, url, parts.params, parts.headers, parts.cookies, body, has_body
    )


def _body(operation: Operation, remaining: dict[str, Any]) -> tuple[Any, bool]:
    if not remaining:
        return None, False
    if not operation.has_body and operation.method not in _BODY_METHODS:
        names = ", ".join(sorted(remaining))
        raise call_error(
            f"operation {operation.operation_id!r} declares no parameter named {names} "
            "and takes no request body",
            code="InvalidArguments",
        )
    if set(remaining) == {"body"}:
        return remaining["body"], True
    return remaining, True


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _deref(root: Mapping[str, Any], node: Any) -> Any:
    """Follow local ``$ref`` pointers (``#/components/...``)."""
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if not ref.startswith("#/") or seen > 20:
            raise call_error(
                f"unsupported $ref {ref!r} in OpenAPI document", code="InvalidDocument"
            )
        target: Any = root
        for key in ref[2:].split("/"):
            key = key.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or key not in target:
                raise call_error(f"$ref {ref!r} points nowhere", code="InvalidDocument")
            target = target[key]
        node = target
        seen += 1
    return node


def _parameter(root: Mapping[str, Any], raw: Any) -> Parameter:
    param = _deref(root, raw)
    if not isinstance(param, dict) or "name" not in param or "in" not in param:
        raise call_error(
            f"malformed parameter in OpenAPI document: {raw!r}", code="InvalidDocument"
        )
    location = str(param["in"])
    return Parameter(str(param["name"]), location, bool(param.get("required", location == "path")))


def _merge_parameters(shared: list[Parameter], own: list[Parameter]) -> tuple[Parameter, ...]:
    merged = {(p.name, p.location): p for p in shared}
    merged.update({(p.name, p.location): p for p in own})
    return tuple(merged.values())


def _servers(raw: Any, base: str | None) -> tuple[str, ...]:
    if not isinstance(raw, list):
        return ()
    out: list[str] = []
    for server in raw:
        if not isinstance(server, dict) or not isinstance(server.get("url"), str):
            continue
        url = server["url"]
        for name, var in (server.get("variables") or {}).items():
            if isinstance(var, dict) and "default" in var:
                url = url.replace("{" + name + "}", str(var["default"]))
        if base is not None and not url.startswith(("http://", "https://")):
            url = urljoin(base, url)
        out.append(url)
    return tuple(out)
