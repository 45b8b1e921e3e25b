"""The ``protocol-lab`` command: thin typer commands over library and service functions.

Every command imports what it needs lazily, so ``protocol-lab --help`` stays fast and the library
never imports the service at import time.
"""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(
    help="protocol-lab: ITSM workflow analytics, simulation and the Workflows & Automation API.",
    no_args_is_help=True,
    add_completion=False,
)

_SETTINGS_HELP = """
Settings come from environment variables (or a .env file):

TEMPORAL_ADDRESS: Temporal frontend host:port; unset starts the dev server

TEMPORAL_NAMESPACE: Temporal namespace (default: default)

TEMPORAL_TLS / TEMPORAL_API_KEY: TLS and API key (Temporal Cloud)

DATABASE_URL: async SQLAlchemy URL (postgresql+asyncpg://...); unset: SQLite

REDIS_URL: redis://host:port/db for BullMQ; unset starts embedded Redis

API_TOKENS: 'tokA=read;tokB=read,write;tokC=admin'; unset prints a dev token

HOST / PORT: where the API listens (default 127.0.0.1:3000)

STATE_DIR: folder for embedded state (default .protocol-lab)

INTEGRATION_URLS: 'mdm=http://...;directory=http://...' (unset: emulated)

SMTP_HOST / SMTP_PORT / NOTIFICATION_WEBHOOK_URL: outbound e-mail, webhooks
"""


@app.command(help="Run the whole stack on this machine until Ctrl-C.\n\n" + _SETTINGS_HELP)
def up(
    worker: Annotated[bool, typer.Option(help="also run the Temporal worker")] = True,
    api: Annotated[bool, typer.Option(help="also run the API")] = True,
) -> None:
    """Start the embedded stack and wait for Ctrl-C or SIGTERM."""
    import secrets
    import time

    from service.settings import get_settings
    from service.stack import Stack, terminate_on_sigterm

    settings = get_settings()
    if not settings.api_tokens:
        token = "dev_" + secrets.token_urlsafe(24)
        settings = settings.model_copy(update={"api_tokens": {token: ["admin"]}})
        typer.echo(f"development token (admin): {token}")
    stack = Stack(settings, with_worker=worker, with_api=api)
    with terminate_on_sigterm():
        try:
            with stack:
                typer.echo(f"Temporal   {stack.temporal_address}")
                if stack.temporal is not None:
                    typer.echo(f"Temporal UI {stack.temporal.ui_url}")
                typer.echo(f"Redis      {stack.redis_url}")
                if api:
                    typer.echo(f"API        {stack.api_url}  (docs: {stack.api_url}/docs)")
                typer.echo("running; Ctrl-C to stop")
                while True:
                    for child in stack.children:
                        child.check_alive()
                    time.sleep(1.0)
        except KeyboardInterrupt:
            typer.echo("stopping")


@app.command(help="Serve the API with uvicorn.\n\n" + _SETTINGS_HELP)
def serve(
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 3000,
) -> None:
    """Run the FastAPI app."""
    import uvicorn

    uvicorn.run("service.app:create_app", factory=True, host=host, port=port, log_level="warning")


@app.command(help="Run a Temporal worker (all five task queues) and the BullMQ processors.")
def worker() -> None:
    """Poll the task queues until interrupted."""
    import asyncio

    from service.temporal.worker import main as worker_main

    asyncio.run(worker_main())


@app.command(help="Write an HTML SLA and throughput report (with PNG pictures) from timelines.")
def report(
    timelines: Annotated[
        str, typer.Argument(help="timelines file: .parquet, .json, .ndjson, .csv")
    ],
    out: Annotated[str, typer.Option(help="output folder")] = "report",
    by: Annotated[str, typer.Option(help="group by this column")] = "task_queue",
    every: Annotated[str, typer.Option(help="period for flow charts, e.g. 1h, 1d, 1w")] = "1d",
) -> None:
    """Load a timelines file and write ``<out>/index.html`` with its pictures."""
    from protocol_lab.analytics import Timelines
    from protocol_lab.analytics.report import write_report

    index = write_report(Timelines.from_file(timelines), out, by=by, every=every)
    typer.echo(f"report written to {index}")


if __name__ == "__main__":
    app()
