"""The demo: a simulated service-desk day replayed against the real service, side by side.

:func:`run_demo` starts the embedded stack (Temporal dev server with its UI, Redis, worker, API)
with its state in a fresh folder and ``TIME_SCALE`` equal to the replay's compression, and runs
the closed loop on the scenario (``data/scenarios/demo_day.yaml`` by default) through
:func:`protocol_lab.replay.run_closed_loop`: the platform's latency measured on this machine in
a warm-up replay of the scenario's busiest hours, the scenario simulated with it, replayed
through the API client, the replayed workflows read back from their Temporal histories and
compared with the simulation, a scenario calibrated from that real log (and one from the
simulation's own log) with its error measured. It writes ``report.html`` with its PNG pictures
and the table of the loop's targets (:func:`protocol_lab.replay.targets.loop_targets`), prints
one line per target, keeps the turn's logs beside the report
(:func:`protocol_lab.replay.saved.save_loop`: the replayed and warm-up timelines, the measured
platform and the simulated scenario, to judge again with
:func:`~protocol_lab.replay.saved.load_loop`), and stops every process it started, also on
Ctrl-C or SIGTERM.

:func:`embedded_service` is the stack part alone, as a context manager (the notebook and the
tests use it).
"""

from __future__ import annotations

import contextlib
import html
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protocol_lab.replay.player import warm_up

if TYPE_CHECKING:
    import polars as pl

    from protocol_lab.analytics import Timelines
    from protocol_lab.compare import Comparison
    from protocol_lab.replay import LoopResult, ReplayResult, ReplayScript
    from protocol_lab.replay.measure import PlatformMeasurement
    from protocol_lab.sim import SimulationResult
    from protocol_lab.sim.calibration import Calibration

__all__ = [
    "DEFAULT_COMPRESSION",
    "MEASURE_HOURS",
    "DemoResult",
    "ServiceHandle",
    "embedded_service",
    "run_demo",
    "warm_up",
    "write_demo_report",
]

DEFAULT_COMPRESSION = 600.0
"""Simulated seconds per wall second: a 36-hour day-and-drain in about 3.6 minutes."""

MEASURE_HOURS = 6.0
"""The warm-up that measures the platform's latency: the busiest six hours (36 s at 600x),
about 100 workflow tasks and 60 workflows; three hours (about 20 tasks) scattered more (the
figures are in docs/architecture.md, "The platform's own latency")."""


@dataclass(frozen=True)
class ServiceHandle:
    """Where a running service is: API, its token, Temporal and its UI."""

    base_url: str
    token: str
    temporal_address: str
    temporal_namespace: str
    ui_url: str | None
    state_dir: Path
    stack: Any = field(repr=False, default=None)

    @property
    def docs_url(self) -> str:
        """The API's interactive documentation."""
        return f"{self.base_url}/docs"


@contextlib.contextmanager
def embedded_service(
    *,
    state_dir: Path,
    time_scale: float,
    temporal_address: str | None = None,
    redis_url: str | None = None,
    ui: bool = True,
) -> Iterator[ServiceHandle]:
    """Run the stack (worker and API as child processes) until the block ends.

    ``temporal_address`` / ``redis_url`` reuse running ones instead of starting them. Every
    workflow timer and emulated duration is divided by ``time_scale``.
    """
    from service.settings import Settings
    from service.stack import Stack, free_port

    token = "demo_" + secrets.token_urlsafe(18)
    settings = Settings(
        temporal_address=temporal_address,
        redis_url=redis_url,
        state_dir=state_dir,
        port=free_port(),
        temporal_ui_port=free_port() if ui else None,
        api_tokens={token: ["admin"]},
        time_scale=time_scale,
    )
    stack = Stack(settings)
    # The stack hands TIME_SCALE and the token down to the worker and the API it starts.
    stack.start()
    try:
        yield ServiceHandle(
            base_url=stack.api_url,
            token=token,
            temporal_address=stack.temporal_address,
            temporal_namespace=settings.temporal_namespace,
            ui_url=stack.temporal.ui_url if stack.temporal is not None and ui else None,
            state_dir=state_dir,
            stack=stack,
        )
    finally:
        stack.stop()


@dataclass
class DemoResult:
    """What the demo produced."""

    report: Path
    script: ReplayScript
    simulation: SimulationResult
    replay: ReplayResult
    real: Timelines
    comparison: Comparison
    wall_s: float
    calibration: Calibration | None = None
    targets: pl.DataFrame | None = None
    platform: PlatformMeasurement | None = None


def _wait_for_api(base_url: str, token: str, *, within_s: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            response = httpx.get(
                f"{base_url}/v1/automation/rules",
                headers={"Authorization": f"Bearer {token}"},
                timeout=5.0,
                trust_env=False,
            )
            if response.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the API at {base_url} did not answer within {within_s:.0f}s")


_PICTURES = (
    ("cumulative_flow.png", "Cumulative flow (hourly)"),
    ("throughput.png", "Throughput (hourly)"),
    ("cycle_time_ecdf.png", "Cycle time against SLA targets"),
    ("step_durations.png", "Step durations"),
)


def _save_pictures(out: Path, tl: Timelines) -> None:
    """The service's pictures (:data:`_PICTURES`) as PNG files in ``out``."""
    import matplotlib.pyplot as plt

    from protocol_lab.analytics import plots

    figures = (
        plots.cumulative_flow_diagram(tl, every="1h"),
        plots.throughput_run_chart(tl, every="1h"),
        plots.cycle_time_ecdf(tl, by="task_queue"),
        plots.step_duration_boxplots(tl),
    )
    for (name, _), figure in zip(_PICTURES, figures, strict=True):
        figure.savefig(out / name, dpi=90)
        plt.close(figure)


def _whole(frame: pl.DataFrame, *, title: str) -> str:
    """Every row of ``frame`` as a table of the report: its targets and calibration tables run
    to 30-72 rows, and a row left out is a result nobody reads."""
    from protocol_lab.analytics.reprs import frame_html

    return frame_html(frame, title=title, max_rows=frame.height)


def _target_sections(targets: pl.DataFrame | None) -> list[str]:
    """The loop's targets: how many rows were met, and the table."""
    import polars as pl

    from protocol_lab.replay.targets import target_lines

    sections: list[str] = []
    if targets is not None:
        met = int(targets["met"].sum())
        sections += [
            "<h2>Targets</h2>",
            f"<p>{met} of {targets.height} target rows met on this run. Cycle-time KS at most "
            "0.10 for every workflow with at least 30 cases on both sides, KS at most 0.20 for "
            "every activity step, and every p50/p95 of a scenario calibrated from a log within "
            "10% (queue waits: or 1 s) of that log. A row not met says by how much and why, "
            "measured on this run; <code>by_chance</code> is a KS row's probability of missing "
            "its limit by sampling alone, were the simulation exact.</p>",
            "<ul>"
            + "".join(f"<li>{html.escape(line)}</li>" for line in target_lines(targets))
            + "</ul>",
            _whole(targets.with_columns(pl.col(pl.Float64).round(3)), title="Targets of this run"),
        ]
    return sections


def _platform_sections(
    platform: PlatformMeasurement | None, drift: pl.DataFrame | None, by_hour: pl.DataFrame | None
) -> list[str]:
    """The platform's latency measured before the replay, its drift, and its course by hour."""
    import polars as pl

    sections: list[str] = []
    if platform is not None:
        sections += [
            "<h2>The platform's own latency</h2>",
            f"<p>Measured before the replay on {platform.workflows} workflows of a warm-up "
            f"replay of the scenario's busiest hours at the same compression "
            f"({platform.wall_s:.0f} s of wall time), in wall-clock milliseconds; the "
            "simulation compared below adds each of them times the compression.</p>",
            _whole(
                platform.table.with_columns(pl.col(pl.Float64).round(2)),
                title="Platform latency (wall clock)",
            ),
        ]
    if drift is not None:
        sections.append(
            _whole(
                drift.with_columns(pl.col(pl.Float64).round(2)),
                title="Platform latency before the replay (warm-up) and during it (fitted from "
                "its log), wall clock ms",
            )
        )
    if by_hour is not None:
        sections.append(
            _whole(
                by_hour.with_columns(pl.col(pl.Float64).round(1)),
                title="The service's workflow task per simulated hour of the replay (wall ms)",
            )
        )
    return sections


def _calibration_sections(
    calibration: Calibration | None, known_calibration: Calibration | None
) -> list[str]:
    """Calibration from the service's log, and from the simulator's log of known parameters."""
    import polars as pl

    sections: list[str] = []
    if calibration is not None and calibration.error is not None:
        sections += [
            "<h2>A scenario calibrated from the service's log</h2><p>Arrivals, step durations, "
            "waits, failures and workers fitted from the replayed workflows alone, simulated "
            "again and compared with the log they came from (relative error of p50/p95 per "
            "task queue; errors below one second of wait are measured against one second).</p>",
            _whole(
                calibration.error.with_columns(pl.col(pl.Float64).round(3)),
                title="Calibration error",
            ),
            _whole(
                calibration.durations.drop("parameters", strict=False).with_columns(
                    pl.col(pl.Float64).round(3)
                ),
                title="Fitted step durations",
            ),
        ]
        if calibration.platform is not None:
            sections.append(
                _whole(
                    calibration.platform.with_columns(pl.col(pl.Float64).round(2)),
                    title="Fitted platform latency (wall clock ms)",
                )
            )
    if known_calibration is not None and known_calibration.error is not None:
        sections += [
            "<h2>Calibration from the simulator's own log</h2><p>The same calibration run on "
            "the simulation whose parameters are known (the scenario with the measured "
            "platform latency): how well calibration itself recovers a model.</p>",
            _whole(
                known_calibration.error.with_columns(pl.col(pl.Float64).round(3)),
                title="Calibration error (known parameters)",
            ),
        ]
    return sections


def write_demo_report(
    *,
    out: Path,
    real: Timelines,
    comparison: Comparison,
    replay_result: ReplayResult,
    simulation: SimulationResult,
    title: str,
    calibration: Calibration | None = None,
    targets: pl.DataFrame | None = None,
    platform: PlatformMeasurement | None = None,
    known_calibration: Calibration | None = None,
    drift: pl.DataFrame | None = None,
    by_hour: pl.DataFrame | None = None,
) -> Path:
    """``out/report.html``: the loop's targets (met or not, by how much, why), the platform's
    latency measured before the replay, the service's SLA by queue, throughput and cumulative
    flow, then simulation against reality with the measured distances and the calibrations;
    PNG pictures beside it."""

    import polars as pl

    from protocol_lab.analytics.report import html_page
    from protocol_lab.analytics.reprs import frame_html, sla_html

    out.mkdir(parents=True, exist_ok=True)
    script = replay_result.script
    as_of = script.origin + timedelta(seconds=script.end_s)
    tl = real.cache()
    _save_pictures(out, tl)
    sla = tl.sla(by="task_queue", as_of=as_of)
    sla_frame = sla.frame.with_columns(pl.col(pl.Float64).fill_nan(None))
    intro = (
        f"<p>Scenario <b>{html.escape(script.name)}</b>: {simulation.tickets} simulated tickets, "
        f"{len(script)} API calls replayed at {replay_result.compression:g} simulated seconds "
        f"per second in {replay_result.wall_s:.0f} s of wall time; "
        f"{len(replay_result.workflows)} workflows started by the service's rules. Times are "
        f"on the simulated clock, from {script.origin:%Y-%m-%d %H:%M} UTC, cut at "
        f"{script.end_s / 3600:.0f} h.</p>"
    )
    pictures = "".join(
        f"<h3>{html.escape(caption)}</h3><img src='{name}' style='max-width:100%'>"
        for name, caption in _PICTURES
    )
    sections = [intro, *_target_sections(targets), *_platform_sections(platform, drift, by_hour)]
    sections += [
        "<h2>The service</h2>",
        tl._repr_html_(),
        sla_html(sla_frame, by=sla.by),
        frame_html(tl.failure_rates(by="task_queue"), title="Outcomes by task queue"),
        pictures,
        comparison.to_html(out),
        frame_html(replay_result.summary(), title="Replayed calls"),
    ]
    sections += _calibration_sections(calibration, known_calibration)
    page = html_page(title, sections)
    report = out / "report.html"
    report.write_text(page, encoding="utf-8")
    return report


def run_demo(
    out: str | Path = "out",
    *,
    scenario: str | Path = "demo_day",
    compression: float = DEFAULT_COMPRESSION,
    until_hours: float | None = 36.0,
    concurrency: int = 16,
    progress: bool = True,
    hold: bool = False,
    echo: Callable[[str], None] = lambda _: None,
    measure_hours: float = MEASURE_HOURS,
) -> DemoResult:
    """Run the whole demo (see the module docstring); ``echo`` receives progress lines.

    ``measure_hours`` is the length of the warm-up replay that measures the platform's latency
    (0: none, the simulation then has no platform latency).

    ``hold`` keeps the stack running after the report (to browse the Temporal UI and the API
    docs) until Ctrl-C or SIGTERM; the stack is stopped either way.
    """
    from protocol_lab.replay import run_closed_loop
    from protocol_lab.replay.saved import save_loop
    from protocol_lab.replay.targets import target_lines
    from protocol_lab.sim import load_scenario
    from service.stack import terminate_on_sigterm

    began = time.monotonic()
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    state = folder / "stack"
    if state.exists():
        shutil.rmtree(state)
    spec = load_scenario(scenario)
    with terminate_on_sigterm():
        echo(f"starting the stack (state in {state})")
        with embedded_service(state_dir=state, time_scale=compression) as svc:
            _wait_for_api(svc.base_url, svc.token)
            echo(f"API        {svc.base_url}  (docs: {svc.docs_url})")
            if svc.ui_url is not None:
                echo(f"Temporal UI {svc.ui_url}")
            # the simulation is made once the platform's latency is measured on this stack
            loop = run_closed_loop(
                spec,
                svc.base_url,
                svc.token,
                until_hours=until_hours,
                measure=measure_hours > 0,
                measure_hours=measure_hours,
                compression=compression,
                concurrency=concurrency,
                progress=progress,
                warm=True,
                temporal_address=svc.temporal_address,
                temporal_namespace=svc.temporal_namespace,
                echo=echo,
            )
            report, targets = _write_loop_report(loop, folder, name=spec.name)
            save_loop(loop, folder)
            for line in target_lines(targets):
                echo(line)
            echo(f"report     {report.resolve()}")
            if hold:
                _hold(svc, echo)
            echo("stopping the stack")
    return DemoResult(
        report=report.resolve(),
        script=loop.script,
        simulation=loop.simulation,
        replay=loop.replay,
        real=loop.real,
        comparison=loop.comparison,
        wall_s=time.monotonic() - began,
        calibration=loop.calibration,
        targets=targets,
        platform=loop.platform,
    )


def _write_loop_report(loop: LoopResult, folder: Path, *, name: str) -> tuple[Path, pl.DataFrame]:
    """The demo's report of one closed loop, and the targets it was judged by."""
    from protocol_lab.replay.targets import latency_by_hour, loop_targets, platform_drift

    targets = loop_targets(loop)
    report = write_demo_report(
        out=folder,
        real=loop.real,
        comparison=loop.comparison,
        replay_result=loop.replay,
        simulation=loop.simulation,
        title=f"{name}: the service, and simulation against reality",
        calibration=loop.calibration,
        targets=targets,
        platform=loop.platform,
        known_calibration=loop.known_calibration,
        drift=platform_drift(loop),
        by_hour=latency_by_hour(loop),
    )
    return report, targets


def _hold(svc: ServiceHandle, echo: Callable[[str], None]) -> None:
    """Keep the stack running until Ctrl-C, failing if one of its processes dies."""
    echo("the stack keeps running for the Temporal UI and the API docs; Ctrl-C stops it")
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            for child in svc.stack.children:
                child.check_alive()
            time.sleep(1.0)
