"""Read a workflow definition (YAML or JSON), resolve its external documents, build the model.

This is the only module of :mod:`tideflow.workflow` that does I/O: it reads
files and, for ``http(s)://`` references, fetches them with httpx at load time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import yaml

from tideflow import limits
from tideflow.errors import Problem, ValueLimitExceeded, WorkflowLoadError, WorkflowValidationError
from tideflow.workflow import model
from tideflow.workflow._build_workflow import workflow as build_workflow
from tideflow.workflow._cycles import cycle_problems
from tideflow.workflow._schema import json_type
from tideflow.workflow.dialects import apply_dialect

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

_SUFFIXES = (".json", ".yaml", ".yml")
_HTTP_TIMEOUT = 10.0


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


def _read_reference(ref: str, base_dir: Path | None) -> str:
    """Read the text of an external document; raises OSError with a short reason."""
    parsed = urlparse(ref)
    if parsed.scheme in ("http", "https"):
        import httpx  # imported here: the only network access of the workflow package

        try:
            response = httpx.get(ref, timeout=_HTTP_TIMEOUT, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise OSError(f"cannot fetch '{ref}': {str(exc) or type(exc).__name__}") from exc
        if response.status_code >= 400:
            raise OSError(f"cannot fetch '{ref}': HTTP {response.status_code}")
        return response.text
    if parsed.scheme == "file":
        path = Path(unquote(parsed.netloc + parsed.path))
    elif parsed.scheme and len(parsed.scheme) > 1:
        raise OSError(f"cannot read '{ref}': unsupported URI scheme '{parsed.scheme}'")
    else:
        path = Path(ref)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
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


def resolve_references(
    doc: Mapping[str, Any], base_dir: Path | None = None, *, local_files: bool = True
) -> tuple[dict[str, Any], list[Problem]]:
    """Inline the external documents a definition refers to.

    Args:
        doc: The parsed definition.
        base_dir: Directory that relative paths resolve against.
        local_files: Whether paths and ``file://`` URIs may be read; a server
            taking definitions from users should pass False.

    Returns:
        A copy of ``doc`` with every readable reference replaced by its content,
        and one problem per reference that could not be read or parsed (the
        property then keeps its string value).
    """
    resolved = dict(doc)
    problems: list[Problem] = []
    for key in EXTERNAL_KEYS:
        ref = doc.get(key)
        if not isinstance(ref, str):
            continue
        try:
            if not local_files and urlparse(ref).scheme not in ("http", "https"):
                raise OSError(f"cannot read '{ref}': local files are not read here; inline it")
            value = _unwrap(key, _parse(_read_reference(ref, base_dir)))
            if not isinstance(value, dict | list):
                shown = "is empty" if value is None else f"holds {json_type(value)}, not {key}"
                problems.append(Problem(path=(key,), message=f"'{ref}' {shown}"))
                continue
            resolved[key] = value
        except OSError as exc:
            problems.append(Problem(path=(key,), message=str(exc)))
        except WorkflowLoadError as exc:
            problems.append(Problem(path=(key,), message=f"cannot parse '{ref}': {exc}"))
    _inline_input_schema(resolved, base_dir, local_files, problems)
    return resolved, problems


def _inline_input_schema(
    doc: dict[str, Any], base_dir: Path | None, local_files: bool, problems: list[Problem]
) -> None:
    """Replace a ``dataInputSchema`` URI (0.8's only form) by the schema it names."""
    spec = doc.get("dataInputSchema")
    holder = dict(spec) if isinstance(spec, Mapping) else {"schema": spec}
    ref = holder.get("schema")
    path: tuple[str, ...] = ("dataInputSchema",)
    if not isinstance(ref, str):
        return
    if isinstance(spec, Mapping):
        path = (*path, "schema")
    try:
        if not local_files and urlparse(ref).scheme not in ("http", "https"):
            raise OSError(f"cannot read '{ref}': local files are not read here; inline it")
        schema = _parse(_read_reference(ref, base_dir))
    except OSError as exc:
        problems.append(Problem(path=path, message=str(exc)))
        return
    except WorkflowLoadError as exc:
        problems.append(Problem(path=path, message=f"cannot parse '{ref}': {exc}"))
        return
    if not isinstance(schema, dict):
        problems.append(
            Problem(path=path, message=f"'{ref}' holds {json_type(schema)}, not a JSON schema")
        )
        return
    doc["dataInputSchema"] = {**holder, "schema": schema}


def _validate(doc: Mapping[str, Any], earlier: list[Problem]) -> list[Problem]:
    from tideflow.workflow.validate import in_document_order, validate_document

    return in_document_order(doc, earlier + validate_document(doc))


def load_and_validate(
    path_or_text: str | os.PathLike[str],
    *,
    base_dir: str | os.PathLike[str] | None = None,
    local_files: bool = True,
    dialect: str | None = None,
) -> tuple[model.Workflow, tuple[Problem, ...]]:
    """Load, resolve and validate a definition; return the model and its warnings.

    ``path_or_text`` is a path (a :class:`~pathlib.Path`, or a one-line string
    ending in ``.json``, ``.yaml`` or ``.yml``) or the definition's text.
    Relative references resolve against ``base_dir``, by default the file's
    directory (or the current directory for text). With ``local_files=False``
    only http(s) references are resolved (for definitions sent by users).
    ``dialect="sonataflow"`` applies that dialect's leniencies to the document
    before validation (:mod:`tideflow.workflow.dialects`).

    Raises:
        WorkflowLoadError: The file cannot be read or does not parse.
        WorkflowValidationError: The definition has problems (all of them).
    """
    text, source, file_dir = source_text(path_or_text)
    directory = Path(base_dir) if base_dir is not None else file_dir
    doc = parse_document(text, source)
    _refuse_dsl1(doc, source)
    resolved, problems = resolve_references(doc, directory, local_files=local_files)
    if cycles := cycle_problems(resolved):  # before anything walks it (the dialect does)
        raise WorkflowValidationError([*problems, *cycles], source=source)
    resolved = dict(apply_dialect(resolved, dialect))
    problems = _validate(resolved, problems)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise WorkflowValidationError(problems, source=source)
    return build_workflow(resolved), tuple(problems)


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
