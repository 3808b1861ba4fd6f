"""``tideflow demo-services``: the services the examples call, on 127.0.0.1:8081."""

from __future__ import annotations

from typing import Annotated, Final

import typer

from tideflow._cli.common import out_console

DEMO_PORT: Final = 8081
"""The port the examples call the demo services on. (The services' module, with FastAPI
and GraphQL, is imported only when the command runs: every other command starts faster.)"""


def demo_services(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", help=f"Port to listen on (the examples call {DEMO_PORT}).")
    ] = DEMO_PORT,
) -> None:
    """Serve the demo pets (REST, GraphQL) and products (OData) services the examples
    call, until Ctrl-C (examples/README.md)."""
    import uvicorn

    from tideflow.demo import create_demo_app

    out_console.print(f"demo services on http://{host}:{port} (the examples call port {DEMO_PORT})")
    uvicorn.run(create_demo_app(), host=host, port=port, log_level="warning")
