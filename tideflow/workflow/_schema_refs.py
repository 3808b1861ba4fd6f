"""``$ref`` s of a ``dataInputSchema`` to other files: found, then bundled into one schema.

A schema file often names its siblings (``"$ref": "customer.json"``,
``"customer.json#/definitions/line"``). Such a reference resolves against the
file that holds it -- the workflow's folder for an inline schema -- as JSON
Schema and SonataFlow (``JsonSchemaReader``) resolve it. The loader reads those
files like the definition's other documents (same rules: relative files only
where local files may be read, ``http(s)`` fetched beforehand), and
:func:`bundle` embeds them in the schema, rewriting every reference to a
pointer inside it, so the stored version is self-contained and validating an
input never reads a file.

Pure: the texts are read elsewhere (:mod:`tideflow.workflow.loader`,
:mod:`tideflow.references`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping
from typing import Any, Final
from urllib.parse import urljoin, urlparse

from tideflow.errors import PathPart, Problem

DOCUMENTS: Final = "$tideflowDocuments"
"""Where :func:`bundle` puts the referenced documents inside the schema."""
MAX_DOCUMENTS: Final = 32
"""At most this many referenced schema files per definition."""
_DROPPED: Final = ("$id", "id", "$schema")  # an embedded document's own base and dialect

Path = tuple[PathPart, ...]


def join(base: str, ref: str) -> str:
    """The URI of ``ref`` (the part before ``#``) written in a document at ``base``."""
    if urlparse(ref).scheme in ("http", "https", "file") or ref.startswith("/"):
        return ref
    if urlparse(base).scheme in ("http", "https"):
        return urljoin(base, ref)
    return posixpath.normpath(posixpath.join(posixpath.dirname(base), ref))


def refs(schema: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """Every ``$ref`` string of a schema, with its path."""
    if isinstance(schema, Mapping):
        for key, value in schema.items():
            if key == "$ref" and isinstance(value, str):
                yield (*path, key), value
            else:
                yield from refs(value, (*path, str(key)))
    elif isinstance(schema, list):
        for index, item in enumerate(schema):
            yield from refs(item, (*path, index))


def file_refs(schema: Any, base: str) -> Iterator[tuple[Path, str]]:
    """(path, URI) of every ``$ref`` to another file, resolved against ``base``."""
    for path, ref in refs(schema):
        target = ref.split("#", 1)[0]
        if target:
            yield path, join(base, target)


def bundle(
    schema: Mapping[str, Any],
    base: str,
    documents: Mapping[str, Any],
    where: Path,
    reasons: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], list[Problem]]:
    """``schema`` with the files it references embedded and every ``$ref`` rewritten.

    Args:
        schema: The root schema.
        base: Its URI (the workflow-relative path or URL it was read from;
            ``""`` for a schema written inline in the workflow).
        documents: The referenced files, parsed, by URI.
        where: The root schema's path in the workflow (for problems).
        reasons: Why a file could not be read or parsed, by URI.
    """
    problems: list[Problem] = []
    used: dict[str, Any] = {}

    def pointer(uri: str) -> str:
        return "#" if uri == base else f"#/{DOCUMENTS}/{_escape(uri)}"

    def rewrite(node: Any, uri: str, at: Path) -> Any:
        if isinstance(node, Mapping):
            out = {}
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str):
                    out[key] = retarget(value, uri, (*at, key))
                else:
                    out[key] = rewrite(value, uri, (*at, str(key)))
            return out
        if isinstance(node, list):
            return [rewrite(item, uri, (*at, i)) for i, item in enumerate(node)]
        return node

    def retarget(ref: str, uri: str, at: Path) -> str:
        target, _, fragment = ref.partition("#")
        file = join(uri, target) if target else uri
        if file != base and file not in documents:
            why = (reasons or {}).get(file) or f"cannot read '{file}': not read before loading"
            problems.append(Problem(path=at, message=f"$ref '{ref}': {why}"))
            return ref
        if file != base and file not in used:
            used[file] = None  # reserve before walking it (documents may refer in a circle)
            embedded = {k: v for k, v in documents[file].items() if k not in _DROPPED}
            used[file] = rewrite(embedded, file, at)
        return pointer(file) + (fragment if fragment.startswith("/") or not fragment else "")

    root = rewrite(schema, base, where)
    if used:
        root[DOCUMENTS] = used
    problems += _unresolved(root, where)
    return root, problems


def _escape(uri: str) -> str:
    return uri.replace("~", "~0").replace("/", "~1")


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


def _unresolved(root: Mapping[str, Any], where: Path) -> list[Problem]:
    """A problem for every local pointer (``#/...``) that names nothing in ``root``."""
    problems = []
    for path, ref in refs(root):
        if not ref.startswith("#/"):
            continue
        node: Any = root
        for part in ref[2:].split("/"):
            key = _unescape(part)
            node = _step(node, key)
            if node is _MISSING:
                problems.append(Problem(path=(*where, *path), message=_missing_message(ref)))
                break
    return problems


_MISSING: Final = object()


def _step(node: Any, key: str) -> Any:
    if isinstance(node, Mapping):
        return node.get(key, _MISSING)
    if isinstance(node, list) and key.isdigit() and int(key) < len(node):
        return node[int(key)]
    return _MISSING


def _missing_message(ref: str) -> str:
    shown = ref.split(DOCUMENTS + "/", 1)[-1].replace("~1", "/").replace("~0", "~")
    return f"cannot resolve $ref: nothing at '{shown}'"
