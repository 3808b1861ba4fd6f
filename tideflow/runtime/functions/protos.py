"""``.proto`` files: compile them, bounded, and find a service's method in them.

A proto file is compiled by ``protoc`` (from the ``grpcio-tools`` package,
``pip install tideflow[grpc]``) in a child process with a deadline, into a
``FileDescriptorSet`` (with its imports). The set is loaded into a private
descriptor pool; request and response messages are built from it, so no
generated Python code is written or imported. Imports resolve in the proto
file's own folder only (and protobuf's well-known types); ``protoc`` refuses
``..`` in import paths, so an import cannot leave that folder.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from tideflow.runtime.functions.types import call_error

MAX_PROTO_BYTES: Final = 1024 * 1024
"""The largest proto file compiled (its imports are bounded by the descriptor set's size)."""
MAX_DESCRIPTOR_BYTES: Final = 8 * 1024 * 1024
"""The largest compiled descriptor set (the file with every import)."""
COMPILE_SECONDS: Final = 30.0
"""How long ``protoc`` may run for one file."""
_STDERR_LINES: Final = 5


@dataclass(frozen=True, slots=True)
class Method:
    """A method of a gRPC service, ready to serialize requests and parse answers."""

    service: str
    """The service's full name (``package.Service``)."""
    name: str
    request: Any
    """The request message class."""
    response: Any
    """The response message class."""
    client_streaming: bool
    server_streaming: bool

    @property
    def path(self) -> str:
        """The HTTP/2 path of the method: ``/package.Service/Method``."""
        return f"/{self.service}/{self.name}"


class ProtoFile:
    """A compiled proto file: its services and their methods."""

    def __init__(self, descriptor_set: bytes, source: str) -> None:
        """Args:
        descriptor_set: A serialized ``FileDescriptorSet`` with every import.
        source: How to name the file in messages.
        """
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

        files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set)
        self.source = source
        self._pool = descriptor_pool.DescriptorPool()
        for proto in files.file:
            self._pool.Add(proto)
        self._factory = message_factory
        self.services: dict[str, Any] = {}
        for proto in files.file:
            described = self._pool.FindFileByName(proto.name)
            for service in described.services_by_name.values():
                self.services[service.full_name] = service

    def method(self, service: str, method: str) -> Method:
        """The method ``service/method``; ``service`` is the full or the short name.

        Raises:
            FunctionCallError: No such service or method (code ``UnknownOperation``).
        """
        found = self.services.get(service) or next(
            (s for s in self.services.values() if s.name == service), None
        )
        if found is None:
            known = ", ".join(sorted(self.services)) or "none"
            raise call_error(
                f"proto file {self.source} has no service {service!r} (it has: {known})",
                code="UnknownOperation",
            )
        described = found.methods_by_name.get(method)
        if described is None:
            known = ", ".join(sorted(found.methods_by_name)) or "none"
            raise call_error(
                f"service {found.full_name} of {self.source} has no method {method!r} "
                f"(it has: {known})",
                code="UnknownOperation",
            )
        return Method(
            service=found.full_name,
            name=described.name,
            request=self._factory.GetMessageClass(described.input_type),
            response=self._factory.GetMessageClass(described.output_type),
            client_streaming=described.client_streaming,
            server_streaming=described.server_streaming,
        )


def split_rpc_operation(operation: str) -> tuple[str, str, str]:
    """Split ``file.proto#Service#Method`` into its three parts.

    Raises:
        FunctionCallError: The operation is not of that form (``InvalidOperation``).
    """
    proto, sep1, rest = operation.partition("#")
    service, sep2, method = rest.partition("#")
    if not (sep1 and sep2 and proto and service and method) or "#" in method:
        raise call_error(
            f"operation {operation!r} is not '<proto file>#<Service>#<Method>'",
            code="InvalidOperation",
        )
    return proto, service, method


def _include_folder() -> str:
    import grpc_tools

    return str(Path(grpc_tools.__file__).parent / "_proto")


def missing_extra() -> str | None:
    """Why gRPC calls cannot be made here (the extra is not installed); else ``None``."""
    try:
        import grpc  # noqa: F401
        import grpc_tools  # noqa: F401
    except ImportError:
        return "gRPC needs the grpc extra: pip install 'tideflow[grpc]' (grpcio, grpcio-tools)"
    return None


async def compile_proto(text: str, name: str, folder: Path | None, source: str) -> ProtoFile:
    """Compile a proto file given as text, with imports from ``folder``.

    Args:
        text: The file's text.
        name: Its file name (``greeter.proto``), as imports name it.
        folder: The folder its imports resolve in; ``None``: only well-known types.
        source: How to name the file in messages.

    Raises:
        FunctionCallError: It is too large, does not compile (``InvalidDocument``),
            takes too long (``Timeout``), or grpcio-tools is missing (``NotSupported``).
    """
    if (missing := missing_extra()) is not None:
        raise call_error(missing, code="NotSupported")
    data = text.encode()
    if len(data) > MAX_PROTO_BYTES:
        raise call_error(
            f"proto file {source} is larger than {MAX_PROTO_BYTES} bytes", code="InvalidDocument"
        )
    with tempfile.TemporaryDirectory(prefix="tideflow-proto-") as work:
        staged = Path(work) / "src"
        staged.mkdir()
        (staged / name).write_bytes(data)
        out = Path(work) / "set.pb"
        command = [sys.executable, "-m", "grpc_tools.protoc", f"--proto_path={staged}"]
        if folder is not None:
            command.append(f"--proto_path={folder}")
        command += [
            f"--proto_path={_include_folder()}",
            f"--descriptor_set_out={out}",
            "--include_imports",
            name,
        ]
        error = await _run(command, source, cwd=work)
        if error is not None:
            raise call_error(
                f"proto file {source} does not compile: {error}", code="InvalidDocument"
            )
        if out.stat().st_size > MAX_DESCRIPTOR_BYTES:
            raise call_error(
                f"proto file {source} with its imports is larger than {MAX_DESCRIPTOR_BYTES} "
                "bytes compiled",
                code="InvalidDocument",
            )
        compiled = out.read_bytes()
    return ProtoFile(compiled, source)


async def _run(command: list[str], source: str, cwd: str) -> str | None:
    """Run ``protoc``; its error text (first lines, paths shortened) or ``None``."""
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        async with asyncio.timeout(COMPILE_SECONDS):
            _, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise call_error(
            f"proto file {source} did not compile within {COMPILE_SECONDS:g} s",
            code="Timeout",
            retryable=False,
        ) from None
    if process.returncode == 0:
        return None
    lines = stderr.decode(errors="replace").strip().splitlines()[:_STDERR_LINES]
    return "; ".join(lines) or f"protoc exited with {process.returncode}"
