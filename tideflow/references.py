"""Resolve a definition's external documents, asynchronously, at the edge.

The workflow loader is pure (:func:`tideflow.workflow.loader.build_definition`
takes the referenced documents' texts); this module reads them. ``http(s)``
documents are fetched concurrently with one ``httpx.AsyncClient`` under
:class:`FetchLimits` (a deadline per document, a size cap, few redirects),
so a slow reference server holds up the deploy that names it and nothing
else on the event loop. Local paths and ``file://`` URIs are read from disk,
in a worker thread, only where ``local_files`` allows it (the operator's own
folders and the CLI; never a definition a user sent over HTTP).

It runs once, where a definition enters: ``tideflow serve`` deploys
(:mod:`tideflow.deploy`), ``tideflow validate`` and ``tideflow run``. The
registry keeps the resolved document with the version, so every process runs
exactly what was validated and nothing is fetched again.
"""

from __future__ import annotations

import asyncio
import copy
import os
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import httpx

from tideflow.bundle import Bundle
from tideflow.catalogs import (
    FUNCTION_BYTES,
    remote_functions,
    with_default_catalog,
    with_functions,
)
from tideflow.clock import SYSTEM_CLOCK, Clock
from tideflow.egress import REFERENCE_LIMITS, EgressPolicy, FetchLimits
from tideflow.errors import EgressDenied, Problem, WorkflowLoadError, WorkflowValidationError
from tideflow.workflow.dsl1 import is_dsl1, load_document
from tideflow.workflow.loader import (
    MAX_SCHEMA_DOCUMENTS,
    Definition,
    ExternalReference,
    Unreadable,
    build_definition,
    external_references,
    parse_document,
    read_local_references,
    schema_references,
    source_text,
)

DEFAULT_LIMITS: Final = REFERENCE_LIMITS


async def read_references(
    doc: Mapping[str, Any],
    *,
    base_dir: Path | None = None,
    local_files: bool = True,
    limits: FetchLimits = DEFAULT_LIMITS,
    transport: httpx.AsyncBaseTransport | None = None,
    egress: EgressPolicy | None = None,
    bundle: Bundle | None = None,
) -> dict[str, str | Unreadable]:
    """The text of every document ``doc`` names (or why it is unreadable), by URI.

    Args:
        doc: The parsed definition.
        base_dir: Directory that relative paths resolve against.
        local_files: Whether paths and ``file://`` URIs may be read.
        limits: Bounds on each ``http(s)`` fetch.
        transport: The HTTP transport (tests); by default httpx's own, or
            one that connects only where ``egress`` allows.
        egress: The egress policy every connection (each redirect too) and
            every local file must pass; ``None`` allows everything.
        bundle: The files deployed with the definition: relative paths
            resolve inside it, and nothing else local is read.
    """
    contents: dict[str, str | Unreadable] = {}
    for _ in range(MAX_SCHEMA_DOCUMENTS + 1):  # each schema file read may $ref more
        refs = (*external_references(doc), *schema_references(doc, contents))
        fresh = [r for r in refs if r.uri not in contents]
        if not fresh:
            break
        if bundle is not None:  # in memory: its files, never the server's
            contents |= {r.uri: bundle.read(r.uri) for r in fresh if not r.remote}
            fresh = [r for r in fresh if r.remote]
        contents |= await _read(fresh, base_dir, local_files, limits, transport, egress)
    return contents


async def _read(
    refs: list[ExternalReference],
    base_dir: Path | None,
    local_files: bool,
    limits: FetchLimits,
    transport: httpx.AsyncBaseTransport | None,
    egress: EgressPolicy | None,
) -> dict[str, str | Unreadable]:
    """Read (local) and fetch (``http(s)``) the documents ``refs`` name."""
    contents: dict[str, str | Unreadable] = {}
    if any(not ref.remote for ref in refs):
        refusal = egress.file_refusal if egress is not None else None
        contents |= await asyncio.to_thread(
            read_local_references, refs, base_dir, local_files=local_files, refusal=refusal
        )
    remote = list(dict.fromkeys(ref.uri for ref in refs if ref.remote))
    if remote:
        contents |= await _fetch_all(remote, limits, transport, egress)
    return contents


async def _fetch_all(
    uris: list[str],
    limits: FetchLimits,
    transport: httpx.AsyncBaseTransport | None,
    egress: EgressPolicy | None,
) -> dict[str, str | Unreadable]:
    """Fetch ``uris`` concurrently, each within ``limits``, through ``egress``."""
    restricted = egress is not None and not egress.allow_all
    if transport is None and egress is not None and restricted:
        from tideflow.egress_connect import egress_transport  # aiohttp: only when fetching

        transport = egress_transport(egress)
    async with httpx.AsyncClient(
        trust_env=not restricted,  # an environment proxy would bypass the policy
        timeout=limits.timeout,
        follow_redirects=True,
        max_redirects=limits.max_redirects,
        transport=transport,
    ) as client:
        texts = await asyncio.gather(*(_fetch(client, uri, limits) for uri in uris))
    return dict(zip(uris, texts, strict=True))


class CatalogCache:
    """Function documents fetched from remote catalogs, by URL: at most ``size``
    of them, each for ``seconds`` (a deploy of many versions fetches each once)."""

    def __init__(self, size: int = 256, seconds: float = 300.0, clock: Clock = SYSTEM_CLOCK):
        self.size, self.seconds, self.clock = size, seconds, clock
        self._entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    def get(self, url: str) -> Any | None:
        """A copy of the document fetched from ``url``, if still fresh."""
        entry = self._entries.get(url)
        if entry is None or self.clock.monotonic() - entry[0] > self.seconds:
            self._entries.pop(url, None)
            return None
        self._entries.move_to_end(url)
        return copy.deepcopy(entry[1])

    def put(self, url: str, document: Any) -> None:
        """Keep the document fetched from ``url``."""
        self._entries[url] = (self.clock.monotonic(), copy.deepcopy(document))
        self._entries.move_to_end(url)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


CATALOG_CACHE: Final = CatalogCache()
"""The process's cache of remote catalog functions."""


async def with_remote_catalogs(
    doc: Mapping[str, Any],
    *,
    source: str | None = None,
    egress: EgressPolicy | None = None,
    limits: FetchLimits = DEFAULT_LIMITS,
    transport: httpx.AsyncBaseTransport | None = None,
    cache: CatalogCache = CATALOG_CACHE,
) -> dict[str, Any]:
    """``doc`` (DSL 1.0) with each function of a remote catalog it calls in ``use.functions``.

    Each function document (``{endpoint}/functions/{name}/{version}/function.yaml``)
    is fetched once, within ``limits`` and at most :data:`~tideflow.catalogs.FUNCTION_BYTES`,
    through ``egress``, and kept in ``cache``.

    Raises:
        WorkflowValidationError: A function cannot be fetched or parsed (at its call's path).
    """
    wanted = remote_functions(doc)
    if not wanted:
        return dict(doc)
    problems = [Problem(f.path, f.problem) for f in wanted if f.problem]
    fetched = {f.url: cache.get(f.url) for f in wanted if not f.problem}
    missing = [url for url, document in fetched.items() if document is None]
    if missing:
        bounded = replace(limits, max_bytes=min(limits.max_bytes, FUNCTION_BYTES))
        for url, text in (await _fetch_all(missing, bounded, transport, egress)).items():
            try:
                if isinstance(text, Unreadable):
                    raise WorkflowLoadError(text.message)
                fetched[url] = parse_document(text, url)
                cache.put(url, fetched[url])
            except WorkflowLoadError as exc:
                problems += [Problem(f.path, exc.message) for f in wanted if f.url == url]
    if problems:
        raise WorkflowValidationError(problems, source=source)
    return with_functions(doc, {f.call: fetched[f.url] for f in wanted})


async def _fetch(client: httpx.AsyncClient, uri: str, limits: FetchLimits) -> str | Unreadable:
    """One document's text, or why it could not be fetched."""
    try:
        async with asyncio.timeout(limits.timeout), client.stream("GET", uri) as response:
            if response.status_code >= 400:
                return Unreadable(f"cannot fetch '{uri}': HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > limits.max_bytes:
                    return Unreadable(f"cannot fetch '{uri}': larger than {limits.max_bytes} bytes")
            return body.decode(response.encoding or "utf-8", errors="replace")
    except EgressDenied as exc:
        return Unreadable(f"cannot fetch '{uri}': {exc}")
    except TimeoutError:
        return Unreadable(f"cannot fetch '{uri}': no complete answer within {limits.timeout:g} s")
    except httpx.TooManyRedirects:
        return Unreadable(f"cannot fetch '{uri}': more than {limits.max_redirects} redirects")
    except httpx.HTTPError as exc:
        return Unreadable(f"cannot fetch '{uri}': {str(exc) or type(exc).__name__}")


async def resolve_definition(
    doc: Mapping[str, Any],
    *,
    source: str = "<text>",
    base_dir: Path | None = None,
    local_files: bool = True,
    dialect: str | None = None,
    limits: FetchLimits = DEFAULT_LIMITS,
    egress: EgressPolicy | None = None,
    bundle: Bundle | None = None,
) -> Definition:
    """Read the documents a parsed definition names, then validate and build it.

    ``egress`` bounds where ``http(s)`` documents may be fetched from, and
    relative paths resolve inside ``bundle`` when there is one (see
    :func:`read_references`).

    Raises:
        WorkflowValidationError: The definition has problems (an unreadable
            reference is one, at its path).
    """
    contents = await read_references(
        doc,
        base_dir=base_dir,
        local_files=local_files,
        limits=limits,
        egress=egress,
        bundle=bundle,
    )
    return build_definition(doc, contents, source=source, dialect=dialect)


async def load_definition(
    path_or_text: str | os.PathLike[str],
    *,
    base_dir: str | os.PathLike[str] | None = None,
    local_files: bool = True,
    dialect: str | None = None,
    limits: FetchLimits = DEFAULT_LIMITS,
) -> Definition:
    """Load a definition from a path or text, its references resolved (see the loader's
    :func:`~tideflow.workflow.loader.load_and_validate` for ``path_or_text``).

    Raises:
        WorkflowLoadError: The file cannot be read or does not parse.
        WorkflowValidationError: The definition has problems (all of them).
    """
    text, source, file_dir = await asyncio.to_thread(source_text, path_or_text)
    doc = parse_document(text, source)
    directory = Path(base_dir) if base_dir is not None else file_dir
    return await resolve_definition(
        doc,
        source=source,
        base_dir=directory,
        local_files=local_files,
        dialect=dialect,
        limits=limits,
    )


async def load_any_definition(
    path_or_text: str | os.PathLike[str],
    *,
    dialect: str | None = None,
    processes: bool | None = False,
) -> tuple[Any, tuple[Problem, ...]]:
    """Load a 0.8 or a 1.0 definition (told apart by ``document.dsl``), 0.8 references
    resolved here (see :func:`tideflow.workflow.loader.load_any`).

    Raises:
        WorkflowLoadError: The file cannot be read or does not parse.
        WorkflowValidationError: The definition has problems (all of them).
    """
    text, source, file_dir = await asyncio.to_thread(source_text, path_or_text)
    doc = parse_document(text, source)
    if is_dsl1(doc):  # the default catalog: beside the file (none for a text); remote ones
        doc = await asyncio.to_thread(with_default_catalog, doc, file_dir, source)
        doc = await with_remote_catalogs(doc, source=source)
        return load_document(doc, source=source, processes=processes)
    definition = await resolve_definition(doc, source=source, base_dir=file_dir, dialect=dialect)
    return definition.workflow, definition.warnings


__all__ = [
    "DEFAULT_LIMITS",
    "FetchLimits",
    "load_any_definition",
    "load_definition",
    "read_references",
    "resolve_definition",
    "with_remote_catalogs",
]
