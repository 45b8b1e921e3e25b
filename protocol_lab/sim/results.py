"""The result of one simulated run: timelines, workflows, queue metrics and summaries.

Frames are built on first use from the run's flat columns:

- :attr:`SimulationResult.events`: timeline events in :data:`protocol_lab.domain.TIMELINE_SCHEMA`
  (workflows started after the warm-up), and :attr:`SimulationResult.timelines`, the same wrapped
  as :class:`protocol_lab.analytics.Timelines` with workflow attributes (priority, ticket_id,
  category), so every analysis applies unchanged;
- :attr:`SimulationResult.workflows`: one row per workflow with its cycle time and status;
- :attr:`SimulationResult.queue_metrics`: per queue and interval, length, utilisation and waits;
- :attr:`SimulationResult.attempts`: one row per activity or job attempt;
- :meth:`SimulationResult.queue_summary` and :meth:`SimulationResult.littles_law`.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from protocol_lab.domain.queues import TaskQueue
from protocol_lab.sim.scenario import Scenario

if TYPE_CHECKING:
    from protocol_lab.analytics import Timelines
    from protocol_lab.sim.model import ServiceDeskModel

__all__ = ["SimulationResult"]


class SimulationResult:
    """What one run produced; frames are computed lazily and cached."""

    def __init__(self, model: ServiceDeskModel) -> None:
        self.scenario: Scenario = model.scenario
        self.recorder = model.recorder
        self.tracker = model.tracker
        self.rules = list(model.rules)
        self.rule_counts = list(model.engine.executions)
        self.truncated_chains = model.engine.truncated_chains
        self.tickets = model.desk.opened
        self.resolved_by_agents = model.desk.resolved_by_agents
        self.jobs_submitted = {q.value: j.submitted for q, j in model.jobs.items()}
        self.jobs_failed = {q.value: j.failed for q, j in model.jobs.items()}
        self.end_s = float(model.env.now)
        self.wall_s = model.wall_s
        self.origin = model.scenario.start

    # -- sizes ----------------------------------------------------------------------------

    @property
    def n_events(self) -> int:
        """Timeline events recorded (all workflows, warm-up included)."""
        return self.recorder.n_events

    @property
    def n_workflows(self) -> int:
        """Workflows started (warm-up included)."""
        return self.recorder.n_workflows

    def __repr__(self) -> str:
        return (
            f"SimulationResult({self.scenario.name!r}: {self.tickets} tickets, "
            f"{self.n_workflows} workflows, {self.n_events} events, {self.wall_s:.2f} s)"
        )

    # -- frames ---------------------------------------------------------------------------

    @cached_property
    def events(self) -> pl.DataFrame:
        """Timeline events after the warm-up, in the shared timeline schema."""
        return self.recorder.events_frame(origin=self.origin, since_s=self.scenario.warmup_s)

    @cached_property
    def workflows(self) -> pl.DataFrame:
        """One row per workflow started after the warm-up."""
        return self.recorder.workflows_frame(origin=self.origin, since_s=self.scenario.warmup_s)

    @cached_property
    def attributes(self) -> pl.DataFrame:
        """Workflow attributes for the timelines: workflow_id, priority, ticket_id, category."""
        return self.workflows.select(
            "workflow_id", pl.col("priority").cast(pl.String), "ticket_id", "category"
        )

    @cached_property
    def queue_metrics(self) -> pl.DataFrame:
        """Per queue and metrics interval: length, utilisation, arrivals, waits."""
        return self.tracker.queue_metrics(origin=self.origin)

    @cached_property
    def attempts(self) -> pl.DataFrame:
        """One row per activity or job attempt (all of the run)."""
        return self.tracker.attempts_frame()

    @property
    def timelines(self) -> Timelines:
        """The events as :class:`protocol_lab.analytics.Timelines`, with workflow attributes."""
        from protocol_lab.analytics import Timelines

        return Timelines.from_frame(self.events, attributes=self.attributes, check=False)

    def write(self, path: Path | str) -> tuple[Path, Path]:
        """Write the timeline events to ``path`` (.parquet, .csv or .ndjson) and the workflows
        (attributes, cycle times, status) beside it as ``<stem>.workflows.parquet``."""
        file = Path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        suffix = file.suffix.lower()
        if suffix == ".parquet":
            self.events.write_parquet(file)
        elif suffix == ".csv":
            self.events.write_csv(file)
        elif suffix in (".ndjson", ".jsonl"):
            self.events.write_ndjson(file)
        else:
            raise ValueError(f"{file}: write .parquet, .csv or .ndjson")
        beside = file.with_name(f"{file.stem}.workflows.parquet")
        self.workflows.write_parquet(beside)
        return file, beside

    @cached_property
    def rule_executions(self) -> pl.DataFrame:
        """How often each rule fired."""
        return pl.DataFrame(
            {
                "rule": [r.name for r in self.rules],
                "trigger": [r.trigger.value for r in self.rules],
                "action": [",".join(a.type for a in r.steps) for r in self.rules],
                "executions": self.rule_counts,
            },
            schema_overrides={"executions": pl.Int64},
        )

    # -- summaries ------------------------------------------------------------------------

    def cycle_times(self) -> dict[str, np.ndarray]:
        """Cycle times (seconds) of completed-or-ended workflows per task queue, after warm-up."""
        a = self.recorder.workflow_arrays()
        keep = (a["start"] >= self.scenario.warmup_s) & ~np.isnan(a["end"])
        cycle = a["end"] - a["start"]
        return {q.value: cycle[keep & (a["queue"] == i)] for i, q in enumerate(TaskQueue)}

    def queue_summary(self) -> pl.DataFrame:
        """Per queue after warm-up: load, utilisation, waits and cycle times.

        Utilisation and mean length are exact time averages between the end of the warm-up and
        the horizon (not the drain); attempts, waits and cycle times count the work that
        arrived after the warm-up, through the drain.

        Columns: queue, kind, capacity, attempts, utilisation, mean_length, mean_wait_s,
        p95_wait_s, and for task queues workflows, completed, failed, mean/p50/p95/p99
        cycle time in seconds.
        """
        t = self.tracker
        warm = self.scenario.warmup_s
        q = np.frombuffer(t.a_queue, dtype=np.int8)
        enq = np.frombuffer(t.a_enq, dtype=np.float64)
        start = np.frombuffer(t.a_start, dtype=np.float64)
        a = self.recorder.workflow_arrays()
        rows: list[dict[str, Any]] = []
        span, areas = t.window("warmup", "horizon")
        span = max(span, 1e-9)
        for pool, (area_wait, area_busy) in zip(t.pools, areas, strict=True):
            sel = (q == pool.code) & (enq >= warm)
            waits = start[sel] - enq[sel]
            row: dict[str, Any] = {
                "queue": pool.name,
                "kind": t.kinds[pool.code],
                "capacity": pool.capacity,
                "attempts": int(sel.sum()),
                "utilisation": area_busy / (pool.capacity * span),
                "mean_length": area_wait / span,
                "mean_wait_s": float(waits.mean()) if len(waits) else 0.0,
                "p95_wait_s": float(np.quantile(waits, 0.95)) if len(waits) else 0.0,
            }
            if t.kinds[pool.code] == "task":
                wsel = (a["queue"] == pool.code) & (a["start"] >= warm)
                ended = wsel & ~np.isnan(a["end"])
                cycle = (a["end"] - a["start"])[ended]
                row |= {
                    "workflows": int(wsel.sum()),
                    "completed": int(np.sum(a["status"][wsel] == 1)),
                    "failed": int(np.sum(a["status"][wsel] >= 2)),
                    "mean_cycle_s": float(cycle.mean()) if len(cycle) else None,
                    "p50_cycle_s": float(np.quantile(cycle, 0.5)) if len(cycle) else None,
                    "p95_cycle_s": float(np.quantile(cycle, 0.95)) if len(cycle) else None,
                    "p99_cycle_s": float(np.quantile(cycle, 0.99)) if len(cycle) else None,
                }
            rows.append(row)
        return pl.DataFrame(rows, infer_schema_length=None)

    def littles_law(self) -> pl.DataFrame:
        """L = lambda W for every queue and for workflows in the system, from separate records.

        L comes from the tracker's time-integrated counts (queue: jobs waiting; system:
        workflows in progress), lambda and W from the attempt records and the workflow
        timeline columns, over the whole run. ``relative_error`` is |L - lambda W| / L.
        """
        t = self.tracker
        span = max(self.end_s, 1e-9)
        q = np.frombuffer(t.a_queue, dtype=np.int8)
        enq = np.frombuffer(t.a_enq, dtype=np.float64)
        start = np.frombuffer(t.a_start, dtype=np.float64)
        rows = []
        for pool in t.pools:
            sel = q == pool.code
            n = int(sel.sum())
            if not n:
                continue
            lam = n / span
            w = float(np.mean(start[sel] - enq[sel]))
            pool.advance(self.end_s)
            rows.append(("queue", pool.name, pool.area_wait / span, lam, w))
        a = self.recorder.workflow_arrays()
        ended = ~np.isnan(a["end"])
        if ended.any():
            end = np.where(ended, a["end"], self.end_s)
            lam = len(a["start"]) / span
            w = float(np.mean(end - a["start"]))
            rows.append(
                ("system", "workflows", self.recorder.wip_integral(self.end_s) / span, lam, w)
            )
        frame = pl.DataFrame(
            rows, schema=["scope", "name", "L", "arrival_rate", "W_s"], orient="row"
        )
        return frame.with_columns(lambda_W=pl.col("arrival_rate") * pl.col("W_s")).with_columns(
            relative_error=((pl.col("L") - pl.col("lambda_W")).abs() / pl.col("L")).fill_nan(0.0)
        )
