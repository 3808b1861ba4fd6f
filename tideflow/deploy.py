"""Deploy a workflow definition: parse, validate, store it as a version of its ``id``.

The one way definitions enter the registry, whether they come from ``POST
/workflows`` (:mod:`tideflow.api.routes.workflows`) or from the ``--workflows``
folders of ``tideflow serve`` (:func:`deploy_folder`). A definition sent by a
user reads no local files (a server must not open files named by its users);
the operator's folders do. A ``python:`` function whose module the server's
policy refuses (:mod:`tideflow.runtime.functions.policy`) is a problem like
any other. Storing the version compiles what the registry compiles with it
(event starts and correlated waits, :mod:`tideflow.triggers.correlation`);
``start.schedule`` is registered by :class:`~tideflow.runtime.start_schedules.WorkflowSchedules`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from tideflow.bundle import Bundle
from tideflow.catalogs import with_default_catalog
from tideflow.egress import EgressPolicy, is_remote
from tideflow.errors import (
    AlreadyExists,
    InvalidArgument,
    Problem,
    TideflowError,
    WorkflowLoadError,
    WorkflowNotFound,
    WorkflowValidationError,
)
from tideflow.references import (
    DEFAULT_LIMITS,
    FetchLimits,
    resolve_definition,
    with_remote_catalogs,
)
from tideflow.runtime.functions.policy import PythonPolicy
from tideflow.runtime.functions.rpc import proto_problems
from tideflow.runtime.start_schedules import check_start_schedule
from tideflow.secrets import SecretAccess, refused_reads
from tideflow.triggers.workflow_events import schedule_on_problem
from tideflow.workflow import parse_document
from tideflow.workflow.dsl1 import (
    is_dsl1,
    load_document,
    normalize,
    not_run_calls,
    python_calls,
    script_runs,
)
from tideflow.workflow.identifiers import workflow_id_problem
from tideflow.workflow.loader import BUNDLE_FILES, Unreadable

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tideflow.runtime.gateway import PostgresRegistry, WorkflowVersion
    from tideflow.workflow.model import FunctionDef

log = logging.getLogger("tideflow.serve")

JSON_TYPES: Final = frozenset({"application/json", "text/json"})
"""Media types of definitions in JSON (any other is read as YAML)."""
DIALECTS: Final = frozenset({"sonataflow"})
DEFINITION_SUFFIXES: Final = (".yaml", ".yml", ".json")


@dataclass(frozen=True, slots=True)
class Deployed:
    """The result of a deploy: the stored version and the definition's warnings."""

    version: WorkflowVersion
    warnings: tuple[dict[str, Any], ...]

    def to_json(self) -> dict[str, Any]:
        """``{id, version, warnings}``."""
        return {
            "id": self.version.workflow_id,
            "version": self.version.version,
            "warnings": list(self.warnings),
        }


def stored_content_type(media: str, dialect: str | None) -> str:
    """The content type kept with a version: YAML or JSON, plus the dialect if any."""
    base = "application/json" if media in JSON_TYPES else "application/yaml"
    return f"{base}; dialect={dialect}" if dialect else base


def _check_dialect(dialect: str | None) -> None:
    if dialect is not None and dialect not in DIALECTS:
        raise InvalidArgument(
            f"unknown dialect {dialect!r}; the only dialect is 'sonataflow'", argument="dialect"
        )


async def deploy_definition(
    registry: PostgresRegistry,
    text: str,
    media: str,
    *,
    base_dir: Path | None = None,
    dialect: str | None = None,
    source: str = "<request body>",
    policy: PythonPolicy | None = None,
    limits: FetchLimits = DEFAULT_LIMITS,
    egress: EgressPolicy | None = None,
    secrets: SecretAccess | None = None,
    bundle: Bundle | None = None,
    engine: str = "postgres",
) -> Deployed:
    """Parse, resolve, validate and store a definition as a new version.

    Its external documents are read once, here (:mod:`tideflow.references`),
    and the resolved document is stored with the version: its instances run
    that, whatever the referenced servers answer later.

    Args:
        registry: Where versions are stored.
        text: The definition as submitted.
        media: Its bare media type (YAML or JSON).
        base_dir: Where local references resolve; ``None`` (definitions sent
            over HTTP) reads no local files at all.
        dialect: ``"sonataflow"`` or ``None``.
        source: How to name the definition in error messages.
        policy: Which modules ``python:`` functions may import; by default
            none (each refused function is a problem at ``functions[i].operation``).
        limits: Bounds on fetching ``http(s)`` references.
        egress: Where ``http(s)`` references may be fetched from (by default
            a server's policy without an allow list: public addresses only).
        secrets: The server's secret grants: a secret the definition uses
            that is not granted to its id is a problem at its path (``None``:
            no check; the runtime then still gives only granted secrets).
        bundle: The files deployed with the definition (:mod:`tideflow.bundle`):
            its relative references resolve there and nowhere else.
        engine: What runs the instances: under ``temporal`` secrets are sealed, so a
            definition computing on one is refused (:func:`engine_problems`).

    Raises:
        WorkflowLoadError: The text does not parse (its ``line`` set).
        WorkflowValidationError: The definition is invalid.
        AlreadyExists: The version exists with another source.
    """
    _check_dialect(dialect)
    try:
        document = parse_document(text, source)
    except WorkflowLoadError as exc:
        message = exc.message.removeprefix(f"{source}: ")
        raise WorkflowLoadError(f"{source}: {message}", source=source, line=exc.line) from None
    if is_dsl1(document):
        # A folder deploy reads the default catalog beside the definition (never over HTTP).
        document = with_default_catalog(document, base_dir, source)
        document = await with_remote_catalogs(  # fetched once, through the egress policy
            document, source=source, egress=egress or EgressPolicy.for_server(), limits=limits
        )
        return await _deploy_dsl1(registry, document, text, media, source, policy, secrets, engine)
    if BUNDLE_FILES in document:
        message = "reserved for the documents of a bundle (POST /workflows with a zip)"
        raise WorkflowValidationError([Problem((BUNDLE_FILES,), message)], source=source)
    definition = await resolve_definition(
        document,
        source=source,
        base_dir=base_dir,
        local_files=base_dir is not None,
        dialect=dialect,
        limits=limits,
        egress=egress or EgressPolicy.for_server(),
        bundle=bundle,
    )
    model, warnings = definition.workflow, definition.warnings
    policy = policy or PythonPolicy.for_server()
    refused = policy.problems(model.functions)
    warnings = (*warnings, *policy.warnings(model.functions))
    files: dict[str, str] = {}
    if bundle is not None:  # its function documents come from it, stored with the version
        found, files = bundle_documents(model.functions, bundle)
        refused += found
    elif base_dir is None:  # sent by a user: no function may name a local document
        refused += local_documents(model.functions)
    else:  # the operator's folder: its proto files compile here, once, bounded
        refused += await proto_problems(model.functions, base_dir)
    if refused:
        raise WorkflowValidationError((*refused, *warnings), source=source)
    schedule_warnings = check_start_schedule(document, source)
    workflow_id = model.id or model.key
    if not workflow_id:  # the validator insists on one; stay safe anyway
        raise InvalidArgument("the definition has neither 'id' nor 'key'", argument="id")
    if bad_id := workflow_id_problem(workflow_id):
        where = "id" if model.id else "key"
        raise WorkflowValidationError((Problem((where,), bad_id), *warnings), source=source)
    refused = await _ungranted(secrets, workflow_id, model.secrets, ("secrets",))
    refused += engine_problems(engine, model.secrets, definition.document)
    if refused:
        raise WorkflowValidationError((*refused, *warnings), source=source)
    resolved = {**definition.document, BUNDLE_FILES: files} if files else definition.document
    stored = await registry.deploy(
        workflow_id,
        model.version,
        text,
        stored_content_type(media, dialect),
        document,
        resolved,
    )
    return Deployed(stored, tuple(w.to_json() for w in (*warnings, *schedule_warnings)))


async def _deploy_dsl1(
    registry: PostgresRegistry,
    document: dict[str, Any],
    text: str,
    media: str,
    source: str,
    policy: PythonPolicy | None,
    secrets: SecretAccess | None,
    engine: str,
) -> Deployed:
    """Validate and store a DSL 1.0 definition as version ``document.version`` of
    ``{namespace}.{name}``; an id already deployed as 0.8 is refused (409)."""
    model, warnings = load_document(document, source=source, processes=False)
    policy = policy or PythonPolicy.for_server()
    refused = [
        Problem(path, reason)
        for path, operation in python_calls(model)
        if (reason := policy.refusal(operation)) is not None
    ]
    refused += [Problem(path, reason) for path, reason in not_run_calls(model)]
    if (no_scripts := policy.script_refusal()) is not None:
        refused += [Problem(path, no_scripts) for path in script_runs(model)]
    if unstartable := schedule_on_problem((model.schedule or {}).get("on")):
        refused.append(Problem(*unstartable))
    if bad_id := workflow_id_problem(model.identifier):
        refused.append(Problem(("document", "name"), bad_id))
    else:
        where = ("use", "secrets")
        refused += await _ungranted(secrets, model.identifier, model.secrets, where)
        refused += engine_problems(engine, model.secrets, document)
    if refused:
        raise WorkflowValidationError((*refused, *warnings), source=source)
    warnings = (*warnings, *check_start_schedule(normalize(document), source))
    try:
        earlier = await registry.get(model.identifier)
    except WorkflowNotFound:
        earlier = None
    if earlier is not None and not is_dsl1(earlier.definition):
        raise AlreadyExists(
            f"workflow {model.identifier!r} is deployed as a Serverless Workflow 0.8 "
            "definition; a DSL 1.0 definition cannot be a version of it"
        )
    stored = await registry.deploy(
        model.identifier, model.version, text, stored_content_type(media, None), normalize(document)
    )
    return Deployed(stored, tuple(w.to_json() for w in warnings))


def engine_problems(engine: str, secrets: Sequence[str], document: Any) -> list[Problem]:
    """What ``engine`` cannot run of a definition using ``secrets``: under ``temporal``, each
    expression that computes on a secret, and each 1.0 authentication policy read from a
    secret (the workflow holds only seals there: ``docs/temporal.md``, "Secrets")."""
    if engine != "temporal" or not secrets:
        return []
    refused = refused_reads(document, dsl1=is_dsl1(document))
    return [Problem(read.path, f"{read.expression!r} {read.reason}") for read in refused]


async def _ungranted(
    secrets: SecretAccess | None,
    workflow_id: str,
    names: tuple[str, ...],
    where: tuple[str, ...],
) -> list[Problem]:
    """A problem for each secret the definition uses that is not granted to its id."""
    if secrets is None or not names:
        return []
    denied = set(await secrets.refused(workflow_id, names))
    return [
        Problem(
            (*where, index),
            f"secret {name!r} is not granted to workflow {workflow_id!r}: the operator "
            f"grants it with tideflow serve --grant-secret '{workflow_id}={name}' "
            "(or TIDEFLOW_SECRET_GRANTS, or POST /secrets/grants)",
        )
        for index, name in enumerate(names)
        if name in denied
    ]


def _local_document(function: FunctionDef) -> tuple[str, str] | None:
    """(kind, reference) of a function's OpenAPI document, AsyncAPI document or proto
    file when it is a local file (a path or ``file:`` URI), else ``None``."""
    operation = function.operation
    if function.type not in ("rest", "openapi", "rpc", "asyncapi") or operation.startswith(
        ("python:", "rest:")
    ):
        return None
    if function.type == "rpc":
        document, sep = operation.partition("#")[0], "#"
    else:
        document, sep, _ = operation.rpartition("#")
    reference = document if sep else operation
    if is_remote(reference):
        return None
    kind = {"rpc": "proto file", "asyncapi": "AsyncAPI document"}.get(
        function.type, "OpenAPI document"
    )
    return kind, reference


def local_documents(functions: Sequence[FunctionDef]) -> list[Problem]:
    """A problem at ``functions[i].operation`` for each function whose OpenAPI
    document, AsyncAPI document or proto file is a local file (a path or
    ``file:`` URI), which a definition sent over HTTP may not name. The file
    is not looked at."""
    return [
        Problem(
            ("functions", index, "operation"),
            f"a definition sent over HTTP may not name a local {local[0]} "
            "(a path or file: URI); use an http(s) URL",
        )
        for index, function in enumerate(functions)
        if (local := _local_document(function)) is not None
    ]


def bundle_documents(
    functions: Sequence[FunctionDef], bundle: Bundle
) -> tuple[list[Problem], dict[str, str]]:
    """The OpenAPI and AsyncAPI documents the functions name, read from ``bundle``
    (by reference as written), and a problem at ``functions[i].operation`` for each
    one it lacks, one that leaves it, and each proto file (not run from a bundle yet)."""
    problems: list[Problem] = []
    files: dict[str, str] = {}
    for index, function in enumerate(functions):
        local = _local_document(function)
        if local is None:
            continue
        at = ("functions", index, "operation")
        kind, reference = local
        if function.type == "rpc":
            problems.append(
                Problem(at, f"a {kind} in a bundle is not run yet: use a --workflows folder")
            )
        elif "#" not in function.operation:
            problems.append(Problem(at, f"not '<{kind}>#<operationId>'"))
        elif isinstance(text := bundle.read(reference), Unreadable):
            problems.append(Problem(at, text.message))
        else:
            files[reference] = text
    return problems, files


def definition_files(folder: Path) -> list[Path]:
    """The workflow definitions directly in ``folder``, by name.

    Files that are not definitions (an input ``NAME.input.json``, an
    ``apis/`` document) are skipped: only ``.yaml``/``.yml``/``.json`` files
    whose name has no other dot-separated part, or only SonataFlow's ``.sw``
    (``NAME.sw.yaml``, ``NAME.sw.json``).
    """
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file()
        and path.suffix in DEFINITION_SUFFIXES
        and "." not in path.stem.removesuffix(".sw")
    )


async def deploy_folder(
    registry: PostgresRegistry,
    folder: Path,
    policy: PythonPolicy | None = None,
    egress: EgressPolicy | None = None,
    secrets: SecretAccess | None = None,
    *,
    dialect: str | None = None,
    engine: str = "postgres",
) -> list[str]:
    """Deploy every definition in ``folder``; log (never raise for) bad ones.

    Local references (``apis/pets.yaml``, ``python:`` modules) resolve
    against the folder: these files are the operator's, not a user's.
    ``python:`` modules must pass ``policy`` (by default: those in ``folder``),
    ``http(s)`` references ``egress`` (by default: public addresses only),
    and secrets must be granted as for any deploy (``secrets``). ``dialect``
    (``"sonataflow"``) is kept with each version, as ``?dialect=`` is.

    Returns:
        ``id@version`` of each definition deployed.
    """
    policy = policy or PythonPolicy.for_server(folders=[folder])
    deployed = []
    for path in definition_files(folder):
        media = "application/json" if path.suffix == ".json" else "application/yaml"
        try:
            text = path.read_text(encoding="utf-8")
            result = await deploy_definition(
                registry,
                text,
                media,
                base_dir=path.parent,
                source=str(path),
                policy=policy,
                egress=egress,
                secrets=secrets,
                dialect=dialect,
                engine=engine,
            )
        except (WorkflowLoadError, WorkflowValidationError) as exc:
            log.error("not deployed: %s", exc.message)
            continue
        except (OSError, TideflowError) as exc:
            log.error("not deployed: %s: %s", path, exc)
            continue
        deployed.append(f"{result.version.workflow_id}@{result.version.version}")
    if deployed:
        log.info("deployed from %s: %s", folder, ", ".join(deployed))
    return deployed
