"""The ``protocol-lab`` command: thin typer commands over library and service functions.

Every command imports what it needs lazily, so ``protocol-lab --help`` stays fast and the library
never imports the service at import time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

import typer

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


class _CommandLine(typer.Typer):
    """The ``protocol-lab`` command: an error ends it with one line on stderr and exit code 1
    (130 on Ctrl-C), not a traceback; ``PROTOCOL_LAB_TRACEBACK=1`` shows the traceback."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command line."""
        import os

        try:
            return super().__call__(*args, **kwargs)
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise SystemExit(130) from None
        except Exception as exc:
            if os.environ.get("PROTOCOL_LAB_TRACEBACK"):
                raise
            text = " ".join(str(exc).split()) or "no details"
            typer.echo(f"error: {text} ({type(exc).__name__})", err=True)
            raise SystemExit(1) from None


app = _CommandLine(
    help="protocol-lab: ITSM workflow analytics, simulation and the Workflows & Automation API.",
    no_args_is_help=True,
    add_completion=False,
)

_Command = TypeVar("_Command", bound=Callable[..., Any])


def _show_version(value: bool) -> None:
    """Print the installed version and stop (the ``--version`` option)."""
    if value:
        from protocol_lab import __version__

        typer.echo(f"protocol-lab {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_show_version, is_eager=True
        ),
    ] = False,
) -> None:
    """The options before any command."""


def _needs_extra(extra: str) -> Callable[[_Command], _Command]:
    """Stop the command with one line naming ``extra`` when that extra is not installed.

    The check runs when the command runs, so its ``--help`` reads without the extra.
    """

    def decorate(command: _Command) -> _Command:
        @functools.wraps(command)
        def checked(*args: Any, **kwargs: Any) -> Any:
            _require_extra(extra)
            return command(*args, **kwargs)

        return cast(_Command, checked)

    return decorate


def _require_extra(extra: str) -> None:
    """Stop with one line naming ``extra`` when it is not installed."""
    from protocol_lab.domain.extras import install_hint, missing_requirements

    missing = missing_requirements(extra)
    if missing:
        typer.echo(
            f"error: this command needs the '{extra}' extra "
            f"({', '.join(missing)} not installed): {install_hint(extra)}",
            err=True,
        )
        raise typer.Exit(1)


_SETTINGS_HELP = """
Settings come from environment variables (or a .env file):

TEMPORAL_ADDRESS: Temporal frontend host:port; unset starts the dev server

TEMPORAL_NAMESPACE: Temporal namespace (default: default)

TEMPORAL_TLS / TEMPORAL_API_KEY: TLS and API key (Temporal Cloud)

DATABASE_URL: async SQLAlchemy URL (postgresql+asyncpg://...); unset: SQLite

REDIS_URL: redis://host:port/db for BullMQ; unset starts embedded Redis

API_TOKENS: 'tokA=read;tokB=read,write;tokC=admin'; unset prints a dev token

HOST / PORT: where the API listens (default 127.0.0.1:3000)

API_WORKERS: worker processes of protocol-lab serve (default 1)

STATE_DIR: folder for embedded state (default .protocol-lab)

INTEGRATION_URLS: 'mdm=http://...;directory=http://...' (unset: emulated)

EVENT_RETRY_HOURS: how long rule events are retried through an outage (default 24)

SMTP_HOST / SMTP_PORT / NOTIFICATION_WEBHOOK_URL: outbound e-mail, webhooks

OTEL_EXPORTER_OTLP_ENDPOINT: OpenTelemetry collector (OTLP/HTTP) for traces; unset: none
"""


@app.command(
    help="Run the whole stack on this machine until Ctrl-C; a part that exits is restarted.\n\n"
    + _SETTINGS_HELP
)
@_needs_extra("service")
def up(
    worker: Annotated[bool, typer.Option(help="also run the Temporal worker")] = True,
    api: Annotated[bool, typer.Option(help="also run the API")] = True,
) -> None:
    """Start the embedded stack, restart any part that exits, stop on Ctrl-C or SIGTERM."""
    import secrets

    from service.observability.logging import configure_logging
    from service.settings import get_settings
    from service.stack import Stack, StackError, terminate_on_sigterm

    settings = get_settings()
    if not settings.api_tokens:
        token = "dev_" + secrets.token_urlsafe(24)
        settings = settings.model_copy(update={"api_tokens": {token: ["admin"]}})
        typer.echo(f"development token (admin): {token}")
    configure_logging(settings)
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
                    typer.echo(
                        f"Metrics    {stack.api_url}/metrics  (ready: {stack.api_url}/readyz)"
                    )
                if worker:
                    typer.echo(f"Worker metrics http://{stack.worker_metrics_address}/metrics")
                typer.echo("running; Ctrl-C to stop")
                stack.supervise(report=lambda line: typer.echo(line, err=True))
        except KeyboardInterrupt:
            typer.echo("stopped")
        except StackError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None


@app.command(help="Serve the API with uvicorn.\n\n" + _SETTINGS_HELP)
@_needs_extra("service")
def serve(
    host: Annotated[
        str | None, typer.Option(help="bind address (default: HOST, else 127.0.0.1)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="port (default: PORT, else 3000)")] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="worker processes (default: API_WORKERS, else 1)"),
    ] = None,
) -> None:
    """Run the FastAPI app, logging through the service's set-up (uvicorn's access log too);
    with several workers each process sets up its own logging."""
    import uvicorn

    from service.observability.logging import configure_logging
    from service.observability.tracing import configure_tracing
    from service.settings import get_settings

    settings = get_settings()
    configure_logging(settings)
    configure_tracing(settings, "api")
    count = settings.api_workers if workers is None else workers
    uvicorn.run(
        "service.app:create_served_app" if count == 1 else "service.app:create_worker_app",
        factory=True,
        workers=count,
        host=host or settings.host,
        port=settings.port if port is None else port,
        log_config=None,
        log_level="info",
        access_log=True,
    )


@app.command(
    help="Run a Temporal worker (all five task queues) and the BullMQ processors; with --sim, "
    "only a simulation worker (replications of sweeps; needs only the 'temporal' extra)."
)
def worker(
    sim: Annotated[bool, typer.Option("--sim", help="run only a simulation worker")] = False,
    processes: Annotated[
        int | None, typer.Option(help="--sim: replications at once (default: cores)")
    ] = None,
    task_queue: Annotated[
        str | None,
        typer.Option(help="--sim: task queue (default: SIMULATION_TASK_QUEUE, else its own)"),
    ] = None,
    temporal: Annotated[
        str | None, typer.Option(help="--sim: Temporal host:port (default: the settings)")
    ] = None,
) -> None:
    """Poll the task queues until interrupted."""
    import asyncio

    if sim:
        _require_extra("temporal")
        asyncio.run(_simulation_worker(temporal, task_queue, processes))
        return
    _require_extra("service")
    from service.observability.logging import configure_logging
    from service.observability.tracing import configure_tracing
    from service.settings import get_settings
    from service.temporal.worker import main as worker_main

    configure_logging(get_settings())
    configure_tracing(get_settings(), "worker")
    asyncio.run(worker_main())


def _service_connect_options() -> dict[str, Any] | None:
    """The service's Temporal connection settings when the service is installed, else None
    (the sweeps then read the Temporal SDK's own configuration)."""
    try:
        from service.settings import get_settings
        from service.temporal.client import connect_options
    except ImportError:
        return None
    return connect_options(get_settings())


async def _simulation_worker(
    address: str | None, task_queue: str | None, processes: int | None
) -> None:
    """Connect and run the simulation worker until SIGINT/SIGTERM."""
    from temporalio.client import Client

    from protocol_lab.sim.sweeps_temporal import (
        run_simulation_worker,
        simulation_connect_options,
        simulation_task_queue,
    )

    options = simulation_connect_options(address, base=_service_connect_options())
    client = await Client.connect(**options)
    typer.echo(
        f"simulation worker on {simulation_task_queue(task_queue)!r} at {options['target_host']}"
    )
    await run_simulation_worker(client, task_queue=task_queue, processes=processes)


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


@app.command(help="Replay a simulated scenario against a running service and compare.")
def replay(
    scenario: Annotated[str, typer.Argument(help="scenario name or YAML file")] = "demo_day",
    base_url: Annotated[str, typer.Option(help="the API")] = "http://127.0.0.1:3000",
    token: Annotated[str, typer.Option(envvar="PROTOCOL_LAB_TOKEN", help="bearer token")] = "",
    compression: Annotated[
        float, typer.Option(help="simulated seconds per second; equal to the service's TIME_SCALE")
    ] = 600.0,
    until_hours: Annotated[float | None, typer.Option(help="cut the script here")] = None,
    concurrency: Annotated[int, typer.Option(help="API calls in flight at most")] = 16,
    out: Annotated[str, typer.Option(help="folder for the comparison report")] = "out/replay",
    temporal_address: Annotated[
        str | None,
        typer.Option(
            help="read exact timelines from Temporal (host:port) instead of the API's "
            "whole-second timestamps"
        ),
    ] = None,
    calibrate: Annotated[
        bool,
        typer.Option(help="also calibrate a scenario from the replayed timelines, print its error"),
    ] = False,
) -> None:
    """Simulate, replay through the client, read the timelines back, write a comparison."""
    from pathlib import Path

    from protocol_lab.replay import run_closed_loop
    from protocol_lab.replay.pipeline import calibration_line
    from protocol_lab.sim import load_scenario

    loop = run_closed_loop(
        load_scenario(scenario),
        base_url,
        token or None,
        compression=compression,
        until_hours=until_hours,
        concurrency=concurrency,
        temporal_address=temporal_address,
        calibrate=calibrate,
        echo=typer.echo,
    )
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    page = folder / "comparison.html"
    page.write_text(
        "<!doctype html><meta charset='utf-8'><body style='font-family:sans-serif'>"
        + loop.comparison.to_html(folder)
        + "</body>",
        encoding="utf-8",
    )
    typer.echo(str(loop.replay.summary()))
    for line in loop.comparison.summary_lines():
        typer.echo(line)
    fitted = calibration_line(loop.calibration)
    if fitted is not None:
        typer.echo(fitted)
    typer.echo(f"comparison written to {page}")


@app.command(help="Fit a scenario to observed timelines; simulate it and print the error.")
def calibrate(
    timelines: Annotated[
        str, typer.Argument(help="timelines file: .parquet, .json, .ndjson, .csv")
    ],
    out: Annotated[str, typer.Option(help="where to write the fitted scenario (YAML)")] = (
        "out/calibrated.yaml"
    ),
    base: Annotated[
        str | None, typer.Option(help="scenario giving catalog, calendar, slots per worker")
    ] = None,
    replications: Annotated[int, typer.Option(help="simulations pooled for the error")] = 3,
) -> None:
    """Calibrate, save the scenario, print the fitted models and p50/p95 errors per queue."""
    from pathlib import Path

    import polars as pl

    from protocol_lab.analytics import Timelines
    from protocol_lab.sim import load_scenario, save_scenario
    from protocol_lab.sim.calibration import calibrate as fit

    result = fit(
        Timelines.from_file(timelines),
        base=load_scenario(base) if base else None,
        replications=replications,
    )
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_scenario(result.scenario, target)
    with pl.Config(tbl_rows=100, tbl_width_chars=160):
        typer.echo(str(result.durations.drop("parameters", strict=False)))
        typer.echo(str(result.signals.drop("parameters", strict=False)))
        typer.echo(str(result.workers))
        typer.echo(str(result.error))
    typer.echo(f"largest relative error {result.max_error():.1%}; scenario written to {target}")


@app.command(help="Simulated service-desk day replayed against the embedded stack; HTML report.")
@_needs_extra("service")
def demo(
    out: Annotated[str, typer.Option(help="output folder (report.html, pictures, state)")] = "out",
    scenario: Annotated[str, typer.Option(help="scenario name or YAML file")] = "demo_day",
    compression: Annotated[
        float, typer.Option(help="simulated seconds per wall second (= TIME_SCALE)")
    ] = 600.0,
    until_hours: Annotated[float, typer.Option(help="simulated hours replayed")] = 36.0,
    hold: Annotated[
        bool, typer.Option(help="keep the stack running after the report, until Ctrl-C")
    ] = False,
) -> None:
    """Start the stack, replay, compare, write ``<out>/report.html``, stop the stack."""
    from protocol_lab.demo import run_demo
    from protocol_lab.replay.pipeline import calibration_line

    try:
        result = run_demo(
            out,
            scenario=scenario,
            compression=compression,
            until_hours=until_hours,
            hold=hold,
            echo=typer.echo,
        )
    except KeyboardInterrupt:
        typer.echo("interrupted; the stack is stopped")
        raise typer.Exit(130) from None
    typer.echo(str(result.replay.summary()))
    typer.echo("simulation against the service (sim / service):")
    for line in result.comparison.summary_lines():
        typer.echo("  " + line)
    fitted = calibration_line(result.calibration)
    if fitted is not None:
        typer.echo(f"{fitted}; table in the report")
    typer.echo(f"report     {result.report}")
    typer.echo(f"done in {result.wall_s:.0f} s; the stack is stopped")


@app.command(help="Simulate a scenario and write its timelines (and workflows beside them).")
def simulate(
    scenario: Annotated[
        str, typer.Argument(help="scenario YAML file, or a name in data/scenarios")
    ] = "service_desk_month",
    out: Annotated[
        str, typer.Option(help="timelines file: .parquet, .csv or .ndjson")
    ] = "timelines.parquet",
    seed: Annotated[int | None, typer.Option(help="seed (default: the scenario's)")] = None,
    horizon_hours: Annotated[float | None, typer.Option(help="override the horizon")] = None,
    metrics: Annotated[
        str | None, typer.Option(help="also write queue metrics (Parquet) here")
    ] = None,
) -> None:
    """Run one scenario; print a per-queue summary."""
    from protocol_lab.sim import load_scenario
    from protocol_lab.sim import simulate as run

    spec = load_scenario(scenario)
    if spec.states is not None:
        raise ValueError(f"{scenario} has a states section: run it with protocol-lab logs simulate")
    if horizon_hours is not None:
        spec = spec.with_horizon(
            horizon_hours, warmup_hours=min(spec.warmup_hours, horizon_hours / 2)
        )
    result = run(spec, seed=seed)
    events, workflows = result.write(out)
    if metrics is not None:
        result.queue_metrics.write_parquet(metrics)
    typer.echo(
        f"{spec.name}: {result.tickets} tickets, {result.n_workflows} workflows, "
        f"{result.n_events} events in {result.wall_s:.1f} s"
    )
    for row in result.queue_summary().filter(kind="task").iter_rows(named=True):
        p95 = row["p95_cycle_s"]
        typer.echo(
            f"  {row['queue']:<20} slots {row['capacity']:>4}  "
            f"utilisation {row['utilisation']:6.1%}  p95 wait {row['p95_wait_s']:9.1f} s  "
            f"p95 cycle {'-' if p95 is None else f'{p95 / 3600:.2f} h'}"
        )
    typer.echo(f"timelines: {events}")
    typer.echo(f"workflows: {workflows}")


@app.command(help="Find the fewest workers per task queue that meet SLA targets.")
def plan(
    scenario: Annotated[
        str, typer.Argument(help="scenario YAML file, or a name in data/scenarios")
    ] = "service_desk_month",
    target: Annotated[
        list[str] | None,
        typer.Option(help="itsm-fleet=48h or itsm-workflows:p99<=2h (repeat); default sla.yaml"),
    ] = None,
    tickets_per_week: Annotated[float | None, typer.Option(help="arrival forecast")] = None,
    horizon_hours: Annotated[float | None, typer.Option(help="override the horizon")] = None,
    replications: Annotated[int, typer.Option(help="runs per configuration")] = 5,
    max_workers: Annotated[int, typer.Option(help="upper bound per queue")] = 40,
    processes: Annotated[int, typer.Option(help="worker processes (at most 2)")] = 2,
    figure: Annotated[str, typer.Option(help="where to save the picture")] = "capacity.png",
    temporal: Annotated[
        str | None,
        typer.Option(help="run replications on simulation workers of this Temporal host:port"),
    ] = None,
    on_temporal: Annotated[
        bool, typer.Option(help="run replications on Temporal as the settings say")
    ] = False,
) -> None:
    """Plan capacity; print workers per queue and save the SLA-against-workers picture."""
    from protocol_lab.sim import load_scenario
    from protocol_lab.sim.planning import parse_target, plan_capacity, targets_from_sla

    spec = load_scenario(scenario)
    if horizon_hours is not None:
        spec = spec.with_horizon(
            horizon_hours, warmup_hours=min(spec.warmup_hours, horizon_hours / 2)
        )
    if tickets_per_week is not None:
        spec = spec.with_forecast(tickets_per_week=tickets_per_week)
    targets = [parse_target(t) for t in target] if target else list(targets_from_sla())
    runner = None
    if temporal or on_temporal:
        _require_extra("temporal")
        from protocol_lab.sim.sweeps_temporal import TemporalRunner, simulation_connect_options

        runner = TemporalRunner(
            connect_options=simulation_connect_options(temporal, base=_service_connect_options())
        )
    result = plan_capacity(
        spec,
        targets,
        replications=replications,
        max_workers=max_workers,
        processes=processes,
        runner=runner,
    )
    for row in result.verification.iter_rows(named=True):
        typer.echo(
            f"{row['task_queue']:<20} {row['workers']:>3} workers  {row['statistic']} "
            f"{row['mean_h']:.2f} h [{row['ci_low_h']:.2f}, {row['ci_high_h']:.2f}] "
            f"target {row['target_h']:g} h  {'met' if row['meets'] else 'NOT MET'}"
        )
    result.figure.savefig(figure, dpi=120)
    typer.echo(f"cost {result.cost:g}; picture: {figure}")
    unmet = [queue for queue, met in result.met.items() if not met]
    if unmet:
        typer.echo(
            f"error: target not met for {', '.join(unmet)} with at most {max_workers} workers",
            err=True,
        )
        raise typer.Exit(1)


events = typer.Typer(
    help="The rule dispatcher's outbox events (through the API, with an admin token).",
    no_args_is_help=True,
)
app.add_typer(events, name="events")


@events.command(
    "redrive",
    help="Queue failed events again: their failed rule executions run again, succeeded ones "
    "do not. Give event ids, or --all for every failed event.",
)
def events_redrive(
    event_ids: Annotated[
        list[int] | None, typer.Argument(help="ids of the events to re-drive", show_default=False)
    ] = None,
    all_failed: Annotated[bool, typer.Option("--all", help="every failed event")] = False,
    limit: Annotated[int, typer.Option(help="at most this many events, oldest first")] = 1000,
    base_url: Annotated[
        str, typer.Option(envvar="PROTOCOL_LAB_URL", help="the API")
    ] = "http://127.0.0.1:3000",
    token: Annotated[
        str, typer.Option(envvar="PROTOCOL_LAB_TOKEN", help="bearer token with the admin scope")
    ] = "",
) -> None:
    """POST /v1/automation/events/redrive; print how many events were queued again."""
    from protocol_lab.client import ApiError, Client

    if bool(event_ids) == all_failed:
        raise typer.BadParameter("give event ids, or --all for every failed event (not both)")
    body: dict[str, object] = {"limit": limit}
    if event_ids:
        body["event_ids"] = event_ids
    try:
        with Client(base_url=base_url, token=token or None) as api:
            result = api.request("POST", "/v1/automation/events/redrive", json=body)
    except ApiError as exc:
        typer.echo(f"redrive failed: {exc}", err=True)
        raise typer.Exit(1) from None
    ids = ", ".join(str(i) for i in result["event_ids"])
    typer.echo(f"re-queued {result['requeued']} event(s)" + (f": {ids}" if ids else ""))


db = typer.Typer(
    help="The store's schema migrations (DATABASE_URL, or SQLite in STATE_DIR). The API and "
    "the worker apply them when they start; these commands do it by hand.",
    no_args_is_help=True,
)
app.add_typer(db, name="db")


@db.command(
    "upgrade",
    help="Bring the database to the newest schema revision (or --to one), keeping every row.\n\n"
    "Examples:\n\n"
    "  protocol-lab db upgrade\n\n"
    "  DATABASE_URL=postgresql+asyncpg://user:pw@db/protocol protocol-lab db upgrade",
)
@_needs_extra("service")
def db_upgrade(
    to: Annotated[str, typer.Option(help="target revision")] = "head",
) -> None:
    """Apply the migrations; print the revision before and after."""
    import asyncio

    from service.store.migrate import current_revision, upgrade

    async def run() -> tuple[str | None, str | None]:
        engine = _store_engine()
        try:
            before = await current_revision(engine)
            await upgrade(engine, to)
            return before, await current_revision(engine)
        finally:
            await engine.dispose()

    before, after = asyncio.run(run())
    typer.echo(f"schema revision {before or 'none'} -> {after}")


@db.command(
    "current",
    help="Print the database's schema revision and the newest one this version knows.\n\n"
    "Example:\n\n  protocol-lab db current",
)
@_needs_extra("service")
def db_current() -> None:
    """Print ``revision <current> (newest <head>)``."""
    import asyncio

    from service.store.migrate import current_revision, head_revision

    async def run() -> str | None:
        engine = _store_engine()
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    typer.echo(f"revision {asyncio.run(run()) or 'none'} (newest {head_revision()})")


def _store_engine() -> AsyncEngine:
    """An engine on the configured store (the SQLite file in STATE_DIR when none is)."""
    from service.private_files import private_dir
    from service.settings import get_settings
    from service.store.db import make_engine

    settings = get_settings()
    if settings.database_url is None:
        private_dir(settings.state_dir)
    return make_engine(settings.database_url or settings.sqlite_url)


logs = typer.Typer(
    help="Event logs from other systems (ServiceNow, Jira, XES) as protocol-lab timelines.",
    no_args_is_help=True,
)
app.add_typer(logs, name="logs")


@logs.command(
    "import",
    help="Read a CSV, Parquet, JSON lines, JSON (Jira) or XES[.gz] log through a preset "
    "(servicenow, jira, xes) or a column mapping (YAML/JSON file of LogMapping fields; with a "
    "preset, the fields it changes) and write its timelines as Parquet (events, and the case "
    "attributes in <out>.workflows.parquet) for `protocol-lab report` and Timelines.from_file.",
)
def logs_import(
    source: Annotated[str, typer.Argument(help="the log file")],
    out: Annotated[str, typer.Option(help="the Parquet file to write")],
    preset: Annotated[str | None, typer.Option(help="servicenow, jira or xes")] = None,
    mapping: Annotated[str | None, typer.Option(help="YAML or JSON file of mapping fields")] = None,
    set_aside: Annotated[
        bool,
        typer.Option("--set-aside", help="leave bad rows out and list them, instead of stopping"),
    ] = False,
) -> None:
    """Import a foreign log; one readable line and exit 1 on a bad file or row."""
    from protocol_lab.analytics.log_import import import_log
    from protocol_lab.domain import ProtocolLabError

    try:
        lines = import_log(source, out, preset=preset, mapping=mapping, set_aside=set_aside)
    except ProtocolLabError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for line in lines:
        typer.echo(line)


@logs.command(
    "calibrate",
    help="Fit a simulation scenario to a foreign log (arrivals by hour of the week, routing "
    "between states and groups, time in each state, group capacities), write it as YAML, "
    "simulate it and print p50/p95 of resolution time per priority, log against simulation.",
)
def logs_calibrate(
    source: Annotated[str, typer.Argument(help="the log file")],
    out: Annotated[str, typer.Option(help="the scenario YAML to write")] = "out/from_log.yaml",
    preset: Annotated[str | None, typer.Option(help="servicenow, jira or xes")] = None,
    mapping: Annotated[str | None, typer.Option(help="YAML or JSON file of mapping fields")] = None,
    replications: Annotated[int, typer.Option(help="simulations pooled for the error")] = 3,
    seed: Annotated[int, typer.Option(help="the scenario's seed")] = 0,
) -> None:
    """Calibrate from a log; exit 1 when a p50/p95 disagrees with the log's (see
    :func:`~protocol_lab.sim.log_calibration.compare_resolution`)."""
    from pathlib import Path

    import polars as pl

    from protocol_lab.analytics import Timelines
    from protocol_lab.analytics.log_import import load_mapping
    from protocol_lab.sim import save_scenario
    from protocol_lab.sim.log_calibration import TARGET_RESOLUTION_ERROR, calibrate_from_log

    fields = load_mapping(mapping) if mapping is not None else None
    fitted = calibrate_from_log(
        Timelines.from_log(source, preset=preset, mapping=fields),
        seed=seed,
        replications=replications,
    )
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_scenario(fitted.scenario, target)
    with pl.Config(tbl_rows=100, tbl_width_chars=160):
        typer.echo(str(fitted.arrivals))
        typer.echo(str(fitted.capacities))
        typer.echo(str(fitted.error))
    verdict = (
        f"every p50/p95 within {TARGET_RESOLUTION_ERROR:.0%}"
        if fitted.within_target
        else f"within {TARGET_RESOLUTION_ERROR:.0%} or the log's own sampling interval"
        if fitted.agrees
        else "NOT agreeing with the log"
    )
    typer.echo(f"{verdict}; scenario written to {target}")
    if not fitted.agrees:
        raise typer.Exit(1)


@logs.command(
    "simulate",
    help="Simulate a scenario with a states section (as `logs calibrate` writes) and write its "
    "timelines as Parquet (events, and each case's priority in <out>.workflows.parquet), "
    "readable by Timelines.from_file and `protocol-lab report`.",
)
def logs_simulate(
    scenario: Annotated[str, typer.Argument(help="scenario YAML file with a states section")],
    out: Annotated[str, typer.Option(help="the Parquet file to write")] = "simulated.parquet",
    seed: Annotated[int | None, typer.Option(help="seed (default: the scenario's)")] = None,
) -> None:
    """Run a state-model scenario; print resolution p50/p95 per priority."""
    import polars as pl

    from protocol_lab.sim import load_scenario
    from protocol_lab.sim.log_calibration import resolution_times
    from protocol_lab.sim.state_flow import simulate_states

    simulated = simulate_states(load_scenario(scenario), seed=seed)
    file = simulated.write_parquet(out)
    summary = (
        resolution_times(simulated)
        .group_by("priority")
        .agg(
            pl.len().alias("resolved"),
            pl.col("resolution_h").quantile(0.5, "linear").round(2).alias("p50_h"),
            pl.col("resolution_h").quantile(0.95, "linear").round(2).alias("p95_h"),
        )
        .sort("priority")
    )
    typer.echo(str(summary))
    typer.echo(f"timelines: {file}")


_EXAMPLES: dict[str, tuple[str, ...]] = {
    "up": (
        "protocol-lab up",
        "PORT=8080 STATE_DIR=/var/lib/protocol-lab protocol-lab up",
        "protocol-lab up --no-worker",
    ),
    "serve": (
        "protocol-lab serve",
        "HOST=0.0.0.0 PORT=8080 DATABASE_URL=postgresql+asyncpg://app:pw@db/protocol "
        "protocol-lab serve",
        "protocol-lab serve --port 3001",
    ),
    "worker": (
        "protocol-lab worker",
        "TEMPORAL_ADDRESS=temporal:7233 REDIS_URL=redis://redis:6379/0 "
        "METRICS_ADDRESS=0.0.0.0:9464 protocol-lab worker",
        "protocol-lab worker --sim --temporal temporal:7233  (replications of sweeps)",
    ),
    "report": (
        "protocol-lab report timelines.parquet",
        "protocol-lab report timelines.ndjson --out weekly --by workflow_name --every 1w",
    ),
    "replay": (
        "protocol-lab replay demo_day --token $TOKEN --until-hours 6",
        "protocol-lab replay demo_day --base-url http://api:3000 --compression 600 --calibrate",
    ),
    "calibrate": (
        "protocol-lab calibrate timelines.parquet",
        "protocol-lab calibrate timelines.parquet --base demo_day --out out/fitted.yaml",
    ),
    "demo": ("protocol-lab demo", "protocol-lab demo --until-hours 12 --out out/demo --hold"),
    "simulate": (
        "protocol-lab simulate service_desk_month --out month.parquet",
        "protocol-lab simulate demo_day --horizon-hours 24 --seed 7 --metrics queues.parquet",
    ),
    "plan": (
        "protocol-lab plan  (targets from data/sla.yaml; exit code 1 when one cannot be met)",
        "protocol-lab plan service_desk_month --target itsm-fleet=48h "
        "--target 'itsm-workflows:p99<=2h' --max-workers 20",
        "protocol-lab plan service_desk_month --temporal temporal:7233  (on worker --sim)",
    ),
    "logs_import": (
        "protocol-lab logs import incidents.csv --preset servicenow --out incidents.parquet",
        "protocol-lab logs import export.csv --mapping mapping.yaml --out tl.parquet --set-aside",
    ),
    "logs_calibrate": (
        "protocol-lab logs calibrate incidents.csv.gz --preset servicenow --out scenario.yaml",
    ),
    "logs_simulate": ("protocol-lab logs simulate scenario.yaml --seed 7 --out month.parquet",),
    "events_redrive": (
        "protocol-lab events redrive --all",
        "PROTOCOL_LAB_TOKEN=$ADMIN protocol-lab events redrive 17 18 --base-url http://api:3000",
    ),
}


def _add_examples(group: typer.Typer) -> None:
    """Show each command's examples after its options in ``--help``."""
    for info in group.registered_commands:
        examples = _EXAMPLES.get(getattr(info.callback, "__name__", ""))
        if examples and not info.epilog:
            info.epilog = "Examples:\n\n" + "\n\n".join(examples)


for _group in (app, *(g.typer_instance for g in app.registered_groups if g.typer_instance)):
    _add_examples(_group)


if __name__ == "__main__":
    app()
