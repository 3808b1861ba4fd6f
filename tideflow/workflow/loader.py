"""Read a workflow definition (YAML or JSON), inline its external documents, build the model.

A definition may name separate documents (``functions: apis/functions.json``,
``dataInputSchema: https://...``). :func:`build_definition` is pure: it takes
their contents already read (:func:`external_references` lists what to read)
and gives the model and the *resolved* document, the one that is stored with
a deployed version and run from then on. This module never touches the
network: ``http(s)`` documents are fetched beforehand, asynchronously, by
:mod:`tideflow.references`. It reads local files only -- the definition named
by a path, and its local references where they are allowed
(:func:`read_local_references`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import yaml

from tideflow import limits
from tideflow.errors import (
    PathPart,
    Problem,
    ValueLimitExceeded,
    WorkflowLoadError,
    WorkflowValidationError,
)
from tideflow.workflow import _schema_refs as schema_refs
from tideflow.workflow import model
from tideflow.workflow._build_workflow import BUNDLE_FILES as BUNDLE_FILES  # re-exported
from tideflow.workflow._build_workflow import output_schema_index
from tideflow.workflow._build_workflow import workflow as build_workflow
from tideflow.workflow._cycles import cycle_problems
from tideflow.workflow._schema import json_type
from tideflow.workflow.dialects import apply_dialect, model_document

try:
    _YamlLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _YamlLoader = yaml.SafeLoader

EXTERNAL_KEYS = (
    "functions",
    "events",
    "retries",
    "errors",
    "constants",
    "secrets",
    "timeouts",
    "auth",
)
"""Top-level properties that may be a path or URI of a separate document."""

MAX_SCHEMA_DOCUMENTS = schema_refs.MAX_DOCUMENTS
"""At most this many schema files ``$ref`` d by a ``dataInputSchema`` are read."""
_SUFFIXES = (".json", ".yaml", ".yml")
_REMOTE = ("http", "https")


def _parse_text(text: str) -> Any:
    if text.lstrip().startswith(("{", "[")):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass  # YAML flow style also starts with a brace; let YAML say what is wrong
        except RecursionError:
            raise WorkflowLoadError("the definition is nested too deep") from None
    return yaml.load(text, Loader=_YamlLoader)  # a safe loader


def _parse(text: str) -> Any:
    """Parse YAML or JSON text into any JSON value.

    Raises:
        WorkflowLoadError: A syntax error (its ``line`` set when known), without a source.
    """
    try:
        document = _parse_text(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = exc.problem or exc.context or "invalid YAML"
        where = f" at line {line}" if line is not None else ""
        raise WorkflowLoadError(f"YAML syntax error{where}: {what}", line=line) from exc
    except yaml.YAMLError as exc:
        raise WorkflowLoadError(f"YAML syntax error: {exc}") from exc
    try:  # before anything walks it: aliases expanded could be billions of values
        limits.check_definition(document)
    except ValueLimitExceeded as exc:
        raise WorkflowLoadError(exc.message) from exc
    return document


def parse_document(text: str, source: str = "<text>") -> dict[str, Any]:
    """Parse a YAML or JSON document whose top level is an object.

    Raises:
        WorkflowLoadError: The text does not parse, or is not an object; the
            message starts with ``source`` and ``line`` is set for syntax errors.
    """
    try:
        doc = _parse(text)
    except WorkflowLoadError as exc:
        raise WorkflowLoadError(f"{source}: {exc.message}", source=source, line=exc.line) from exc
    if not isinstance(doc, dict):
        kind = "empty" if doc is None else f"a {type(doc).__name__}"
        raise WorkflowLoadError(
            f"{source}: a workflow definition must be an object, this document is {kind}",
            source=source,
        )
    return doc


@dataclass(frozen=True, slots=True)
class ExternalReference:
    """A property of a definition that names a separate document."""

    path: tuple[PathPart, ...]
    """Where the reference is: ``("functions",)``, ``("dataInputSchema", "schema")``."""
    key: str
    """The top-level property (one of :data:`EXTERNAL_KEYS`, ``dataInputSchema``), ``schema``
    (a file a schema ``$ref`` s) or ``outputSchema`` (SonataFlow's output schema extension)."""
    uri: str
    """The path or URI as written."""

    @property
    def remote(self) -> bool:
        """Whether it is an ``http(s)`` URI (fetched by :mod:`tideflow.references`)."""
        return urlparse(self.uri).scheme in _REMOTE


@dataclass(frozen=True, slots=True)
class Unreadable:
    """Why a referenced document could not be read: a problem at its reference."""

    message: str


ReferenceContents = Mapping[str, "str | Unreadable"]
"""The text of each referenced document (or why it is unreadable), by URI as written."""


@dataclass(frozen=True, slots=True)
class Definition:
    """A valid definition: its model, its warnings and the resolved document."""

    workflow: model.Workflow
    warnings: tuple[Problem, ...]
    document: dict[str, Any]
    """The definition with every external document inlined, before any dialect:
    what is stored with a deployed version and what its instances run."""


def external_references(doc: Mapping[str, Any]) -> tuple[ExternalReference, ...]:
    """The external documents a parsed definition names, in a fixed order."""
    refs = [
        ExternalReference((key,), key, doc[key])
        for key in EXTERNAL_KEYS
        if isinstance(doc.get(key), str)
    ]
    # 0.8: a URI, or {schema: URI, failOnValidationErrors} (the output schema: the same)
    for at, spec in _schema_specs(doc):
        key = "dataInputSchema" if at == ("dataInputSchema",) else "outputSchema"
        if isinstance(spec, str):
            refs.append(ExternalReference(at, key, spec))
        elif isinstance(spec, Mapping) and isinstance(spec.get("schema"), str):
            refs.append(ExternalReference((*at, "schema"), key, spec["schema"]))
    return tuple(refs)


def _schema_specs(doc: Mapping[str, Any]) -> list[tuple[tuple[PathPart, ...], Any]]:
    """(path, value) of the ``dataInputSchema`` and of the output schema extension's
    ``outputSchema``: each a URI or ``{schema, failOnValidationErrors}``."""
    specs: list[tuple[tuple[PathPart, ...], Any]] = []
    if "dataInputSchema" in doc:
        specs.append((("dataInputSchema",), doc["dataInputSchema"]))
    index = output_schema_index(doc)
    if index is not None:
        extension = doc["extensions"][index]
        specs.append((("extensions", index, "outputSchema"), extension.get("outputSchema")))
    return specs


_Root = tuple[tuple[PathPart, ...], Any, str, tuple[PathPart, ...]]


def _schema_roots(doc: Mapping[str, Any]) -> list[_Root]:
    """Each schema as written: (its spec's path, the schema or its URI, its base URI,
    the schema's path)."""
    roots: list[_Root] = []
    for at, spec in _schema_specs(doc):
        if isinstance(spec, str):
            roots.append((at, spec, spec, at))
        elif isinstance(spec, Mapping):
            schema = spec.get("schema")
            roots.append((at, schema, schema if isinstance(schema, str) else "", (*at, "schema")))
    return roots


def schema_references(
    doc: Mapping[str, Any], contents: ReferenceContents
) -> tuple[ExternalReference, ...]:
    """The schema files the ``dataInputSchema`` and the output schema (and the files read
    so far) ``$ref``, not read yet.

    Readers call this until it gives nothing (at most
    :data:`~tideflow.workflow._schema_refs.MAX_DOCUMENTS` files in all): each
    file read may name more.
    """
    found: list[ExternalReference] = []
    seen: set[str] = set()
    for _, schema, base, where in _schema_roots(doc):
        pending: list[tuple[Any, str, tuple[PathPart, ...]]] = [(schema, base, where)]
        seen.add(base)
        while pending and len(seen) <= schema_refs.MAX_DOCUMENTS:
            node, uri, path_at = pending.pop()
            if isinstance(node, str):
                node = _parsed_schema(contents.get(node))
            for path, target in schema_refs.file_refs(node, uri):
                if target in seen:
                    continue
                seen.add(target)
                if target in contents:
                    pending.append((target, target, path_at))
                else:
                    ref_path = (*path_at, *map(str, path))
                    found.append(ExternalReference(ref_path, "schema", target))
    return tuple(found)


def _parsed_schema(content: str | Unreadable | None) -> Any:
    if not isinstance(content, str):
        return None
    try:
        return _parse(content)
    except WorkflowLoadError:
        return None


def read_local_references(
    refs: Iterable[ExternalReference],
    base_dir: Path | None,
    *,
    local_files: bool = True,
    refusal: Callable[[Path], str | None] | None = None,
) -> dict[str, str | Unreadable]:
    """Read the local (non-``http(s)``) references from disk; remote ones are left out.

    Args:
        refs: The references (:func:`external_references`).
        base_dir: Directory that relative paths resolve against.
        local_files: Whether paths and ``file://`` URIs may be read; a server
            taking definitions from its users passes False.
        refusal: Why a file (absolute) may not be read, if it may not
            (a server's egress policy: only inside its folders); asked before
            the file is touched.
    """
    contents: dict[str, str | Unreadable] = {}
    for ref in refs:
        if ref.remote or ref.uri in contents:
            continue
        if not local_files:
            message = f"cannot read '{ref.uri}': local files are not read here; inline it"
            contents[ref.uri] = Unreadable(message)
            continue
        try:
            path = _local_path(ref.uri, base_dir)
            refused = refusal(path.absolute()) if refusal is not None else None
            if refused is not None:
                contents[ref.uri] = Unreadable(f"cannot read '{ref.uri}': {refused}")
                continue
            contents[ref.uri] = _read_file(ref.uri, path)
        except OSError as exc:
            contents[ref.uri] = Unreadable(str(exc))
    return contents


def _local_path(ref: str, base_dir: Path | None) -> Path:
    """The file a local reference names; raises OSError for another URI scheme."""
    parsed = urlparse(ref)
    if parsed.scheme == "file":
        path = Path(unquote(parsed.netloc + parsed.path))
    elif parsed.scheme and len(parsed.scheme) > 1:
        raise OSError(f"cannot read '{ref}': unsupported URI scheme '{parsed.scheme}'")
    else:
        path = Path(ref)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path


def _read_file(ref: str, path: Path) -> str:
    """Read a local document; raises OSError with a short reason."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise OSError(f"cannot read '{ref}': no such file") from exc
    except OSError as exc:
        raise OSError(f"cannot read '{ref}': {exc.strerror or exc}") from exc


def _unwrap(key: str, value: Any) -> Any:
    """Take ``{"functions": [...]}`` apart; accept the bare value as well."""
    if isinstance(value, Mapping) and key in value and (key != "constants" or len(value) == 1):
        return value[key]
    return value


def inline_references(
    doc: Mapping[str, Any], contents: ReferenceContents
) -> tuple[dict[str, Any], list[Problem]]:
    """Inline the external documents a definition names (pure).

    Args:
        doc: The parsed definition.
        contents: The text of each referenced document, by URI as written.

    Returns:
        A copy of ``doc`` with every readable reference replaced by its content,
        and one problem per reference that could not be read or parsed (the
        property then keeps its string value).
    """
    resolved = dict(doc)
    problems: list[Problem] = []
    for ref in external_references(doc):
        try:
            value = _parse_content(ref, contents.get(ref.uri))
        except ValueError as exc:
            problems.append(Problem(path=ref.path, message=str(exc)))
            continue
        if ref.key in ("dataInputSchema", "outputSchema"):
            at = ref.path[:-1] if ref.path[-1] == "schema" else ref.path
            spec = _spec_at(doc, at)
            holder = dict(spec) if isinstance(spec, Mapping) else {}
            _put_spec(resolved, at, {**holder, "schema": value})
        else:
            resolved[ref.key] = value
    problems += _output_spec_problems(resolved)
    problems += _bundle_schemas(doc, resolved, contents)
    return resolved, problems


def _spec_at(doc: Mapping[str, Any], at: tuple[PathPart, ...]) -> Any:
    """The schema spec at ``("dataInputSchema",)`` or ``("extensions", i, "outputSchema")``."""
    if at == ("dataInputSchema",):
        return doc.get("dataInputSchema")
    extension = doc["extensions"][at[1]]
    return extension.get("outputSchema") if isinstance(extension, Mapping) else None


def _put_spec(resolved: dict[str, Any], at: tuple[PathPart, ...], spec: Any) -> None:
    """Replace the schema spec at ``at`` in ``resolved`` (its ``extensions`` list copied)."""
    if at == ("dataInputSchema",):
        resolved["dataInputSchema"] = spec
        return
    extensions = list(resolved["extensions"])
    index = at[1]
    assert isinstance(index, int)
    extensions[index] = {**extensions[index], "outputSchema": spec}
    resolved["extensions"] = extensions


def _output_spec_problems(resolved: Mapping[str, Any]) -> list[Problem]:
    """The output schema extension's ``outputSchema`` is not a URI or ``{schema, ...}``."""
    index = output_schema_index(resolved)
    if index is None:
        return []
    spec = _spec_at(resolved, ("extensions", index, "outputSchema"))
    at: tuple[PathPart, ...] = ("extensions", index, "outputSchema")
    if isinstance(spec, str):
        return []
    if not isinstance(spec, Mapping) or not isinstance(spec.get("schema"), str | dict):
        return [Problem(at, "must be a schema URI or {schema, failOnValidationErrors}")]
    fail = spec.get("failOnValidationErrors", True)
    if not isinstance(fail, bool):
        return [Problem((*at, "failOnValidationErrors"), "must be true or false")]
    return []


def _bundle_schemas(
    doc: Mapping[str, Any], resolved: dict[str, Any], contents: ReferenceContents
) -> list[Problem]:
    """Embed the files the schemas ``$ref`` (see :mod:`._schema_refs`)."""
    documents: dict[str, Any] = {}
    reasons: dict[str, str] = {}
    for uri, content in contents.items():
        if isinstance(content, Unreadable):
            reasons[uri] = content.message
            continue
        value = _parsed_schema(content)
        if isinstance(value, dict):
            documents[uri] = value
        else:
            reasons[uri] = f"'{uri}' is not a JSON schema (an object)"
    problems: list[Problem] = []
    for at, _, base, _ in _schema_roots(doc):
        spec = _spec_at(resolved, at)
        if not isinstance(spec, Mapping) or not isinstance(spec.get("schema"), dict):
            continue
        where = (*at, "schema")
        bundled, found = schema_refs.bundle(spec["schema"], base, documents, where, reasons)
        _put_spec(resolved, at, {**spec, "schema": bundled})
        problems += found + _schema_problems(bundled, where)
    return problems


def _schema_problems(schema: dict[str, Any], where: tuple[PathPart, ...]) -> list[Problem]:
    """The schema is not one of its draft (draft-04 and later, by ``$schema``)."""
    import jsonschema  # type: ignore[import-untyped]  # slow import: only when needed

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        at = tuple(str(p) for p in exc.absolute_path)
        return [Problem(path=(*where, *at), message=f"not a valid JSON schema: {exc.message}")]
    except (RecursionError, ValueError) as exc:  # hostile nesting, odd values
        return [Problem(path=where, message=f"not a valid JSON schema: {exc}")]
    return []


def _parse_content(ref: ExternalReference, content: str | Unreadable | None) -> Any:
    """The document ``ref`` names, parsed; raises ValueError with the problem's message."""
    if content is None:
        how = "fetched" if ref.remote else "read"
        raise ValueError(f"cannot read '{ref.uri}': not {how} before loading")
    if isinstance(content, Unreadable):
        raise ValueError(content.message)
    try:
        value = _parse(content)
    except WorkflowLoadError as exc:
        raise ValueError(f"cannot parse '{ref.uri}': {exc}") from None
    if ref.key in ("dataInputSchema", "outputSchema", "schema"):
        if not isinstance(value, dict):
            raise ValueError(f"'{ref.uri}' holds {json_type(value)}, not a JSON schema")
        return value
    value = _unwrap(ref.key, value)
    if not isinstance(value, dict | list):
        shown = "is empty" if value is None else f"holds {json_type(value)}, not {ref.key}"
        raise ValueError(f"'{ref.uri}' {shown}")
    return value


def _validate(doc: Mapping[str, Any], earlier: list[Problem], dialect: str | None) -> list[Problem]:
    from tideflow.workflow.validate import in_document_order, validate_document

    return in_document_order(doc, earlier + validate_document(doc, dialect))


def build_definition(
    doc: Mapping[str, Any],
    contents: ReferenceContents | None = None,
    *,
    source: str = "<text>",
    dialect: str | None = None,
) -> Definition:
    """Inline, validate and build a parsed definition (pure).

    ``contents`` holds the referenced documents (none are needed for a
    document already resolved, such as a stored version's).
    ``dialect="sonataflow"`` applies that dialect's leniencies to the document
    before validation (:mod:`tideflow.workflow.dialects`).

    Raises:
        WorkflowValidationError: The definition has problems (all of them).
    """
    _refuse_dsl1(doc, source)
    resolved, problems = inline_references(doc, contents or {})
    if cycles := cycle_problems(resolved):  # before anything walks it (the dialect does)
        raise WorkflowValidationError([*problems, *cycles], source=source)
    document, notes = apply_dialect(resolved, dialect)
    problems = _validate(document, [*problems, *notes], dialect)
    if any(p.severity == "error" for p in problems):
        raise WorkflowValidationError(problems, source=source)
    return Definition(
        workflow=build_workflow(model_document(document, dialect)),
        warnings=tuple(problems),
        document=resolved,
    )


def load_and_validate(
    path_or_text: str | os.PathLike[str],
    *,
    base_dir: str | os.PathLike[str] | None = None,
    local_files: bool = True,
    dialect: str | None = None,
    references: ReferenceContents | None = None,
) -> tuple[model.Workflow, tuple[Problem, ...]]:
    """Load, resolve and validate a definition; return the model and its warnings.

    ``path_or_text`` is a path (a :class:`~pathlib.Path`, or a one-line string
    ending in ``.json``, ``.yaml`` or ``.yml``) or the definition's text.
    Relative references resolve against ``base_dir``, by default the file's
    directory (or the current directory for text). With ``local_files=False``
    no local file is read (for definitions sent by users). ``http(s)``
    documents are taken from ``references`` (fetched by
    :mod:`tideflow.references`), never fetched here.

    Raises:
        WorkflowLoadError: The file cannot be read or does not parse.
        WorkflowValidationError: The definition has problems (all of them).
    """
    text, source, file_dir = source_text(path_or_text)
    directory = Path(base_dir) if base_dir is not None else file_dir
    doc = parse_document(text, source)
    contents = {**(references or {})}
    for _ in range(schema_refs.MAX_DOCUMENTS + 1):  # each schema file may name more
        refs = (*external_references(doc), *schema_references(doc, contents))
        fresh = [r for r in refs if r.uri not in contents]
        if not fresh:
            break
        contents |= read_local_references(fresh, directory, local_files=local_files)
        contents |= {
            r.uri: Unreadable(f"cannot read '{r.uri}': not fetched before loading")
            for r in fresh
            if r.remote and r.uri not in contents
        }
    definition = build_definition(doc, contents, source=source, dialect=dialect)
    return definition.workflow, definition.warnings


def _refuse_dsl1(doc: Mapping[str, Any], source: str) -> None:
    """A 1.0 document given to the 0.8 entry point: its problems, or why it is refused."""
    from tideflow.workflow.dsl1 import is_dsl1, load_document

    if not is_dsl1(doc):
        return
    load_document(doc, source=source, processes=None)
    problem = Problem(
        path=("document", "dsl"),
        message="a DSL 1.0 workflow: this entry point takes 0.8 definitions "
        "(tideflow run and tideflow validate take both)",
    )
    raise WorkflowValidationError([problem], source=source)


def load_any(
    path_or_text: str | os.PathLike[str],
    *,
    dialect: str | None = None,
    processes: bool | None = False,
) -> tuple[Any, tuple[Problem, ...]]:
    """Load and validate a 0.8 or a 1.0 definition, told apart by ``document.dsl``.

    Returns:
        The model (:class:`tideflow.workflow.model.Workflow` for 0.8,
        :class:`tideflow.workflow.dsl1.Workflow` for 1.0) and its warnings.

    Raises:
        WorkflowLoadError: The file cannot be read or does not parse.
        WorkflowValidationError: The definition has problems (all of them).
    """
    from tideflow.workflow.dsl1 import is_dsl1, load_document

    text, source, _ = source_text(path_or_text)
    doc = parse_document(text, source)
    if is_dsl1(doc):
        return load_document(doc, source=source, processes=processes)
    return load_and_validate(path_or_text, dialect=dialect)


def load_workflow(
    path_or_text: str | os.PathLike[str],
    *,
    base_dir: str | os.PathLike[str] | None = None,
    local_files: bool = True,
    dialect: str | None = None,
) -> model.Workflow:
    """Load a valid definition into the model (see :func:`load_and_validate`).

    Raises:
        WorkflowLoadError: The file cannot be read or does not parse.
        WorkflowValidationError: The definition has problems (all of them).
    """
    return load_and_validate(
        path_or_text, base_dir=base_dir, local_files=local_files, dialect=dialect
    )[0]


def load_file(path: str | os.PathLike[str], *, dialect: str | None = None) -> model.Workflow:
    """Load a valid definition from a file.

    Raises:
        WorkflowLoadError: The file cannot be read or does not parse.
        WorkflowValidationError: The definition has problems (all of them).
    """
    return load_workflow(Path(path), dialect=dialect)


def source_text(path_or_text: str | os.PathLike[str]) -> tuple[str, str, Path | None]:
    """Return (text, source name, directory) for a path or a definition's text."""
    if isinstance(path_or_text, str) and not _is_path_string(path_or_text):
        return path_or_text, "<text>", None
    path = Path(path_or_text)
    try:
        return path.read_text(encoding="utf-8"), str(path), path.parent
    except FileNotFoundError as exc:
        raise WorkflowLoadError(f"{path}: no such file", source=str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowLoadError(f"{path}: cannot read: {exc}", source=str(path)) from exc


def _is_path_string(value: str) -> bool:
    return "\n" not in value and value.strip().lower().endswith(_SUFFIXES)
