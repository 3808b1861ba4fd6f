"""A workflow deployed with its files: a zip bundle, read and checked in memory (pure).

SonataFlow projects keep a workflow beside the files it names -- its
``dataInputSchema`` and the schemas that one ``$ref`` s, a ``functions`` or
``events`` file, the OpenAPI documents its functions call. Over HTTP a
server reads no file of its own for a definition (:mod:`tideflow.deploy`); a
*bundle* brings them along: a zip of the workflow and its relative files (``POST /workflows`` with
``Content-Type: application/zip``, ``tideflow workflows deploy`` of a
folder or a ``.zip``).

A relative reference of the workflow resolves only inside the bundle,
against the workflow's folder there (SonataFlow's ``classpath:`` against the
bundle's root); nothing outside it -- no other path of the server -- is
ever read. The zip is read in memory, bounded (:class:`BundleLimits`): its
number of files, their total size once expanded and each file's compression
ratio (a zip bomb is refused from its headers, and the expansion stops at
the declared size in case the headers lie), and every name is checked
(no ``..``, no absolute path, no drive, no symlink). Each refusal is a
:class:`~tideflow.errors.Problem` at ``("bundle", name)``, so the deploy
answers 422 with the offending path.
"""

from __future__ import annotations

import io
import posixpath
import stat
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from tideflow.errors import Problem, WorkflowValidationError
from tideflow.workflow.loader import Unreadable

BUNDLE_TYPES: Final = frozenset({"application/zip", "application/x-zip-compressed"})
"""Media types of a bundle upload."""
DEFINITION_SUFFIXES: Final = (".yaml", ".yml", ".json")


@dataclass(frozen=True, slots=True)
class BundleLimits:
    """Bounds on a bundle, checked before anything is expanded."""

    max_files: int = 256
    """Files (directories not counted)."""
    max_bytes: int = 16 * 1024 * 1024
    """All files together, expanded."""
    max_ratio: int = 100
    """Expanded size over compressed size, per file (above :attr:`ratio_floor`)."""
    ratio_floor: int = 64 * 1024
    """Files expanding to less than this are not held to :attr:`max_ratio`."""


DEFAULT_BUNDLE_LIMITS: Final = BundleLimits()


@dataclass(frozen=True, slots=True)
class Bundle:
    """The files of a bundle by normalised relative name, and which one is the workflow."""

    workflow: str
    """The definition's name inside the bundle (``flows/order.sw.yaml``)."""
    files: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def definition(self) -> bytes:
        """The definition's bytes."""
        return self.files[self.workflow]

    @property
    def media(self) -> str:
        """The definition's media type, from its name."""
        return "application/json" if self.workflow.endswith(".json") else "application/yaml"

    def read(self, uri: str) -> str | Unreadable:
        """The text of the file a reference of the workflow names, or why it has none.

        ``uri`` is relative to the workflow's folder in the bundle
        (``classpath:`` to the bundle's root); a reference that leaves the
        bundle, an absolute path and any other URI scheme are unreadable.
        """
        name = self.resolve(uri)
        if name is None:
            return Unreadable(f"cannot read '{uri}': only files inside the bundle are read")
        content = self.files.get(name)
        if content is None:
            return Unreadable(f"cannot read '{uri}': the bundle has no file '{name}'")
        try:
            return content.decode("utf-8")
        except UnicodeDecodeError:
            return Unreadable(f"cannot read '{uri}': '{name}' is not UTF-8 text")

    def resolve(self, uri: str) -> str | None:
        """The bundle name ``uri`` designates, or ``None`` if it points outside the bundle."""
        if uri.startswith("classpath:"):
            base, path = "", uri.removeprefix("classpath:").lstrip("/")
        else:
            base, path = posixpath.dirname(self.workflow), uri
        if ":" in path.split("/", 1)[0] or path.startswith(("/", "\\")) or "\\" in path:
            return None  # a URI scheme (file:), a drive, an absolute or Windows path
        name = posixpath.normpath(posixpath.join(base, path))
        if name == ".." or name.startswith("../") or name.startswith("/"):
            return None
        return name


def _name_problem(name: str) -> str | None:
    """Why a zip entry's name is refused, if it is."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "an absolute path; a bundle holds relative names only"
    if "\\" in name:
        return "a backslash in a name; use '/'"
    if ".." in name.split("/"):
        return "'..' in a name; a bundle's files stay inside it"
    if "\x00" in name:
        return "a NUL character in a name"
    return None


def _entry_problem(entry: zipfile.ZipInfo, limits: BundleLimits) -> str | None:
    """Why a zip entry is refused (its name, its kind, its compression), if it is."""
    if (why := _name_problem(entry.filename)) is not None:
        return why
    mode = entry.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "a symbolic link; a bundle holds regular files only"
    if entry.flag_bits & 0x1:
        return "an encrypted file"
    if entry.file_size > limits.ratio_floor and entry.file_size > limits.max_ratio * max(
        entry.compress_size, 1
    ):
        return (
            f"expands {entry.file_size} bytes from {entry.compress_size}: more than "
            f"{limits.max_ratio} times (a zip bomb?)"
        )
    return None


def _entries(archive: zipfile.ZipFile, limits: BundleLimits) -> list[zipfile.ZipInfo]:
    """The file entries of ``archive``, every name and header checked against ``limits``."""
    problems: list[Problem] = []
    files = [entry for entry in archive.infolist() if not entry.is_dir()]
    if len(files) > limits.max_files:
        raise _invalid(("bundle",), f"{len(files)} files: at most {limits.max_files}")
    seen: set[str] = set()
    for entry in files:
        why = _entry_problem(entry, limits)
        if why is None and posixpath.normpath(entry.filename) in seen:
            why = "the name appears twice"
        if why is not None:
            problems.append(Problem(("bundle", entry.filename), why))
        seen.add(posixpath.normpath(entry.filename))
    total = sum(entry.file_size for entry in files)
    if total > limits.max_bytes:
        problems.append(Problem(("bundle",), f"{total} bytes expanded: at most {limits.max_bytes}"))
    if problems:
        raise WorkflowValidationError(problems, source="<bundle>")
    return files


def _expand(archive: zipfile.ZipFile, entry: zipfile.ZipInfo) -> bytes:
    """An entry's bytes, never more than its header declares (a lying header is refused)."""
    with archive.open(entry) as member:
        content = member.read(entry.file_size + 1)
    if len(content) != entry.file_size:
        raise _invalid(("bundle", entry.filename), "its size differs from its zip header")
    return content


def read_bundle(
    data: bytes, workflow: str | None = None, limits: BundleLimits = DEFAULT_BUNDLE_LIMITS
) -> Bundle:
    """Read a zip bundle from memory, every file checked against ``limits``.

    Args:
        data: The zip.
        workflow: The definition's name in it; by default the one definition
            at its root (see :func:`definition_names`).
        limits: Bounds on files, size and compression.

    Raises:
        WorkflowValidationError: The zip is unreadable or refused, or has
            no (or more than one) definition: a problem at ``("bundle", name)``.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise _invalid(("bundle",), f"not a readable zip file ({exc})") from None
    with archive:
        try:
            files = {
                posixpath.normpath(entry.filename): _expand(archive, entry)
                for entry in _entries(archive, limits)
            }
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError) as exc:
            raise _invalid(("bundle",), f"not a readable zip file ({exc})") from None
    return Bundle(workflow=_pick(files, workflow), files=files)


def definition_names(names: Mapping[str, object]) -> list[str]:
    """The definitions at a bundle's root: ``NAME.yaml``/``.yml``/``.json`` or
    SonataFlow's ``NAME.sw.yaml``/``.sw.json`` (as a ``--workflows`` folder is read)."""
    found = []
    for name in names:
        stem, suffix = posixpath.splitext(name)
        if (
            "/" not in name
            and suffix in DEFINITION_SUFFIXES
            and "." not in stem.removesuffix(".sw")
        ):
            found.append(name)
    return sorted(found)


def _pick(files: Mapping[str, bytes], workflow: str | None) -> str:
    """The definition's name: ``workflow`` (which must be in the bundle), else the only one."""
    if workflow is not None:
        name = posixpath.normpath(workflow)
        if name not in files:
            raise _invalid(("bundle", workflow), "no such file in the bundle (?workflow=)")
        return name
    found = definition_names(files)
    if len(found) == 1:
        return found[0]
    if not found:
        why = "no workflow definition (NAME.yaml, NAME.json, NAME.sw.yaml) at its root"
    else:
        names = ", ".join(found)
        why = f"several workflow definitions at its root ({names}): name one (?workflow=)"
    raise _invalid(("bundle",), why)


def _invalid(path: tuple[str, ...], message: str) -> WorkflowValidationError:
    return WorkflowValidationError([Problem(path, message)], source="<bundle>")


__all__ = [
    "BUNDLE_TYPES",
    "DEFAULT_BUNDLE_LIMITS",
    "Bundle",
    "BundleLimits",
    "definition_names",
    "read_bundle",
]
