"""Capacity planning: the cheapest workers per task queue that meet SLA targets.

A planner states targets (for instance "p95 cycle time on itsm-accessories at most 72 hours")
and a forecast (the scenario's arrivals, scaled with :meth:`Scenario.with_forecast`), and calls
:func:`plan_capacity`. The search:

1. runs a pilot with ample workers (``replications`` runs) to measure each queue's offered
   load (its busiest hour) and the best value the target statistic can reach;
2. searches each queue's worker count from the pilot's guess, up or down one worker at a time,
   running each configuration ``replications`` times (in parallel processes, with a progress
   bar); a queue is resolved at the fewest workers whose upper confidence bound meets its
   target while one fewer does not (queues share no workers, so one configuration informs every
   queue at once);
3. verifies the chosen combination with fresh runs of all queues together and raises any queue
   that then misses its target.

A target that even ample workers cannot meet (human waits dominate) is reported as not met, with
the fewest workers that come within 5% of the best attainable value.

The result carries the chosen workers, the sweep as a polars frame (statistic, confidence
interval, target, utilisation per queue and worker count) and a matplotlib figure of the
statistic against workers with the target line, which is the picture that justifies the choice.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl
from matplotlib.figure import Figure
from pydantic import BaseModel, ConfigDict, Field

from protocol_lab.domain.errors import ScenarioError
from protocol_lab.domain.queues import TaskQueue
from protocol_lab.domain.sla import SlaConfig, load_sla_config
from protocol_lab.sim.plots import plot_capacity
from protocol_lab.sim.replications import (
    MAX_PROCESSES,
    ReplicationRunner,
    process_pool,
    queue_values,
    run_replications,
)
from protocol_lab.sim.scenario import Scenario
from protocol_lab.sim.validation import confidence_interval

__all__ = ["CapacityPlan", "QueueTarget", "parse_target", "plan_capacity", "targets_from_sla"]


class QueueTarget(BaseModel):
    """An SLA target on one task queue: a percentile of cycle time (or queue wait) in hours."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_queue: TaskQueue
    max_hours: float = Field(gt=0)
    percentile: float = Field(default=95.0, gt=0, lt=100)
    metric: Literal["cycle_time", "queue_wait"] = "cycle_time"

    @property
    def key(self) -> str:
        """The summary column this target reads."""
        prefix = "cycle" if self.metric == "cycle_time" else "wait"
        return f"{prefix}_p{self.percentile:g}_s"

    @property
    def label(self) -> str:
        """E.g. ``p95 cycle_time <= 4h``."""
        return f"p{self.percentile:g} {self.metric} <= {self.max_hours:g}h"


def targets_from_sla(
    config: SlaConfig | None = None, *, percentile: float = 95.0
) -> tuple[QueueTarget, ...]:
    """The task-queue targets of ``data/sla.yaml`` (or ``config``) as percentile targets."""
    config = config if config is not None else load_sla_config()
    return tuple(
        QueueTarget(task_queue=t.task_queue, max_hours=t.target_hours, percentile=percentile)
        for t in config.targets
        if t.task_queue is not None
    )


_TARGET = re.compile(
    r"^(?P<queue>[a-z-]+)\s*[:=]\s*(?:p(?P<pct>\d+(?:\.\d+)?)\s*)?(?P<metric>wait|cycle)?\s*"
    r"(?:<=)?\s*(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>h|m|s)?$"
)


def parse_target(text: str) -> QueueTarget:
    """Parse ``itsm-fleet=48h``, ``itsm-workflows:p99<=2h`` or ``itsm-network:p95 wait<=10m``."""
    m = _TARGET.match(text.strip())
    if not m:
        raise ScenarioError(
            f"cannot read target {text!r}; write e.g. itsm-fleet=48h or itsm-workflows:p99<=2h"
        )
    scale = {"h": 1.0, "m": 1 / 60, "s": 1 / 3600}[m["unit"] or "h"]
    try:
        queue = TaskQueue(m["queue"])
    except ValueError:
        raise ScenarioError(
            f"unknown task queue {m['queue']!r}; one of {[q.value for q in TaskQueue]}"
        ) from None
    return QueueTarget(
        task_queue=queue,
        max_hours=float(m["value"]) * scale,
        percentile=float(m["pct"] or 95),
        metric="queue_wait" if m["metric"] == "wait" else "cycle_time",
    )


@dataclass(frozen=True)
class CapacityPlan:
    """The answer of :func:`plan_capacity`."""

    workers: dict[str, int]
    met: dict[str, bool]
    cost: float
    sweep: pl.DataFrame
    verification: pl.DataFrame
    figure: Figure
    scenario: Scenario
    targets: tuple[QueueTarget, ...] = field(default=())

    def table(self) -> pl.DataFrame:
        """One row per targeted queue: target, chosen workers, verified statistic and CI."""
        return self.verification

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{q}</td><td>{n}</td><td>{'yes' if self.met[q] else 'NO'}</td></tr>"
            for q, n in self.workers.items()
        )
        return (
            f"<b>Capacity plan</b> for {self.scenario.name!r} (cost {self.cost:g})"
            f"<table><tr><th>task queue</th><th>workers</th><th>target met</th></tr>{rows}"
            "</table>"
        )


def _stats(
    summaries: Sequence[dict[str, Any]], target: QueueTarget, *, level: float
) -> dict[str, Any]:
    values = [v / 3600.0 for v in queue_values(summaries, queue=target.task_queue, key=target.key)]
    util = queue_values(summaries, queue=target.task_queue, key="utilisation")
    if not values:
        return {"mean_h": None, "ci_low_h": None, "ci_high_h": None, "meets": False, "util": None}
    mean, low, high = confidence_interval(values, level=level)
    upper = high if not math.isnan(high) else mean
    return {
        "mean_h": mean,
        "ci_low_h": low if not math.isnan(low) else mean,
        "ci_high_h": upper,
        "meets": upper <= target.max_hours,
        "util": sum(util) / len(util) if util else None,
    }


def plan_capacity(
    scenario: Scenario,
    targets: Sequence[QueueTarget] | Mapping[str, float],
    *,
    replications: int = 5,
    max_workers: int = 40,
    processes: int = MAX_PROCESSES,
    confidence: float = 0.95,
    progress: bool = True,
    max_rounds: int = 12,
    runner: ReplicationRunner | None = None,
) -> CapacityPlan:
    """Search the fewest workers per targeted task queue meeting every target; see the module.

    ``targets`` are :class:`QueueTarget` objects, or a mapping of task queue to hours (p95 cycle
    time). Queues without a target keep the scenario's workers. Returns a :class:`CapacityPlan`.
    A ``runner`` (e.g. a ``TemporalRunner``) runs the replications instead of local processes;
    ``processes`` still sets how many configurations a round tries, so the search, and its
    answer, are the same wherever the replications run.
    """
    if isinstance(targets, Mapping):
        targets = [QueueTarget(task_queue=TaskQueue(q), max_hours=h) for q, h in targets.items()]
    targets = tuple(targets)
    if not targets:
        raise ScenarioError("give at least one target")
    queues = [t.task_queue for t in targets]
    if len(set(queues)) != len(queues):
        raise ScenarioError("one target per task queue")
    slots = {q: scenario.task_queue(q).slots for q in queues}

    with contextlib.ExitStack() as stack:
        local = runner is None and processes > 1
        pool = stack.enter_context(process_pool(processes)) if local else None
        return _plan(
            scenario,
            targets,
            slots=slots,
            pool=pool,
            runner=runner,
            replications=replications,
            max_workers=max_workers,
            processes=processes,
            confidence=confidence,
            progress=progress,
            max_rounds=max_rounds,
        )


def _plan(
    scenario: Scenario,
    targets: tuple[QueueTarget, ...],
    *,
    slots: Mapping[TaskQueue, int],
    pool: ProcessPoolExecutor | None,
    runner: ReplicationRunner | None,
    replications: int,
    max_workers: int,
    processes: int,
    confidence: float,
    progress: bool,
    max_rounds: int,
) -> CapacityPlan:
    """The three stages of the search (see the module), in order."""
    planner = _Planner(
        scenario=scenario,
        targets=targets,
        slots=slots,
        pool=pool,
        runner=runner,
        replications=replications,
        max_workers=max_workers,
        processes=processes,
        confidence=confidence,
        progress=progress,
    )
    guess, goal = planner.pilot()
    chosen, rows = planner.search(guess, goal, max_rounds=max_rounds)
    vrows = planner.verify(chosen, goal, rows)
    return planner.plan(chosen, rows, vrows)


@dataclass(frozen=True)
class _Planner:
    """What every stage of one capacity search shares: the scenario, targets and how to run."""

    scenario: Scenario
    targets: tuple[QueueTarget, ...]
    slots: Mapping[TaskQueue, int]
    pool: ProcessPoolExecutor | None
    runner: ReplicationRunner | None
    replications: int
    max_workers: int
    processes: int
    confidence: float
    progress: bool

    @property
    def queues(self) -> list[TaskQueue]:
        """The targeted task queues, in the targets' order."""
        return [t.task_queue for t in self.targets]

    def runs(
        self, configs: Sequence[Mapping[TaskQueue, int]], what: str
    ) -> list[list[dict[str, Any]]]:
        """The replications' summaries of each configuration of workers."""
        return run_replications(
            [self.scenario.with_workers({q.value: n for q, n in cfg.items()}) for cfg in configs],
            replications=self.replications,
            processes=self.processes,
            progress=self.progress,
            description=what,
            pool=self.pool,
            runner=self.runner,
        )

    def pilot(self) -> tuple[dict[TaskQueue, int], dict[TaskQueue, float]]:
        """Stage 1, ample workers: each queue's first guess (offered load) and its goal."""
        pilot = self.runs([{q: self.max_workers for q in self.queues}], "pilot")[0]
        guess: dict[TaskQueue, int] = {}
        goal: dict[TaskQueue, float] = {}
        for t in self.targets:
            q = t.task_queue
            peak = queue_values(pilot, queue=q, key="peak_busy")
            guess[q] = max(1, math.ceil(max(peak, default=0.0) / self.slots[q]))
            best = _stats(pilot, t, level=self.confidence)["ci_high_h"] or 0.0
            # a target that ample workers miss cannot be met: aim for "as good as it gets"
            goal[q] = t.max_hours if best <= t.max_hours else best * 1.05
        return guess, goal

    def search(
        self,
        guess: Mapping[TaskQueue, int],
        goal: Mapping[TaskQueue, float],
        *,
        max_rounds: int,
    ) -> tuple[dict[TaskQueue, int], list[dict[str, Any]]]:
        """Stage 2: each queue's fewest workers meeting its goal; the chosen and the sweep rows.

        All open queues are tried in each configuration, as queues share no workers.
        """
        rows: list[dict[str, Any]] = []
        tested: dict[TaskQueue, dict[int, bool]] = {q: {} for q in self.queues}
        chosen: dict[TaskQueue, int] = {}
        width = max(1, min(MAX_PROCESSES, self.processes))
        for _ in range(max_rounds):
            plans = self._next_counts(tested, chosen, guess=guess, width=width)
            open_queues = [q for q in plans if plans[q]]
            if not open_queues:
                break
            configs = self._configs(plans, chosen)
            for cfg, summaries in zip(configs, self.runs(configs, "sweep"), strict=True):
                for t in self.targets:
                    q = t.task_queue
                    if q not in open_queues or cfg[q] in tested[q]:
                        continue
                    st = _stats(summaries, t, level=self.confidence)
                    tested[q][cfg[q]] = st["ci_high_h"] is not None and st["ci_high_h"] <= goal[q]
                    rows.append(_row(t, cfg[q], self.slots[q], st, self.replications))
        for q in self.queues:
            fewest = max([n for n, ok in tested[q].items() if ok], default=self.max_workers)
            chosen.setdefault(q, fewest)
        return chosen, rows

    def _next_counts(
        self,
        tested: Mapping[TaskQueue, Mapping[int, bool]],
        chosen: dict[TaskQueue, int],
        *,
        guess: Mapping[TaskQueue, int],
        width: int,
    ) -> dict[TaskQueue, list[int]]:
        """The worker counts to try next per unresolved queue; resolved ones go to ``chosen``."""
        plans: dict[TaskQueue, list[int]] = {}
        for q in self.queues:
            if q in chosen:
                continue
            resolved, nexts = _candidates(
                tested[q], guess=guess[q], width=width, top=self.max_workers
            )
            if resolved is not None:
                chosen[q] = resolved
            else:
                plans[q] = nexts
        return plans

    def _configs(
        self, plans: Mapping[TaskQueue, list[int]], chosen: Mapping[TaskQueue, int]
    ) -> list[dict[TaskQueue, int]]:
        """One configuration per candidate rank: each queue at its k-th count (or its choice)."""
        return [
            {
                q: chosen.get(q) or (plans[q][min(k, len(plans[q]) - 1)] if q in plans else 1)
                for q in self.queues
            }
            for k in range(max(len(p) for p in plans.values()))
        ]

    def verify(
        self,
        chosen: dict[TaskQueue, int],
        goal: Mapping[TaskQueue, float],
        rows: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """Stage 3: run the combination together, raising queues that miss (up to 3 times).

        Raises ``chosen`` in place and adds each failed round's rows to ``rows``; returns the
        last round's rows (which are added to ``rows`` too).
        """
        vrows: list[dict[str, Any]] = []
        for _ in range(3):
            summaries = self.runs([chosen], "verify")[0]
            vrows = [
                _row(
                    t,
                    chosen[t.task_queue],
                    self.slots[t.task_queue],
                    _stats(summaries, t, level=self.confidence),
                    self.replications,
                    stage="verify",
                )
                for t in self.targets
            ]
            bump = [
                TaskQueue(r["task_queue"])
                for r in vrows
                if r["ci_high_h"] is not None
                and r["ci_high_h"] > goal[TaskQueue(r["task_queue"])]
                and chosen[TaskQueue(r["task_queue"])] < self.max_workers
            ]
            if not bump:
                break
            rows.extend(vrows)
            for q in bump:
                chosen[q] += 1
        rows.extend(vrows)
        return vrows

    def plan(
        self,
        chosen: Mapping[TaskQueue, int],
        rows: list[dict[str, Any]],
        vrows: list[dict[str, Any]],
    ) -> CapacityPlan:
        """The plan: the chosen workers, their cost, the sweep and its figure."""
        sweep = pl.DataFrame(rows).sort("task_queue", "workers", "stage")
        planned = self.scenario.with_workers({q.value: n for q, n in chosen.items()})
        cost = sum(
            planned.task_queue(q).workers * planned.task_queue(q).cost_per_worker for q in TaskQueue
        )
        workers = {q.value: chosen[q] for q in self.queues}
        figure = plot_capacity(sweep, targets=self.targets, chosen=workers)
        return CapacityPlan(
            workers=workers,
            met={r["task_queue"]: bool(r["meets"]) for r in vrows},
            cost=cost,
            sweep=sweep,
            verification=pl.DataFrame(vrows),
            figure=figure,
            scenario=planned,
            targets=self.targets,
        )


def _candidates(
    tested: Mapping[int, bool], *, guess: int, width: int, top: int
) -> tuple[int | None, list[int]]:
    """The resolved worker count, or the next counts to try (bisection once bracketed).

    Assumes the statistic does not get worse with more workers. Without a success yet, the
    search gallops upward from the guess; once a success is known it bisects the gap between
    the highest failure and the lowest success.
    """
    fails = [n for n, ok in tested.items() if not ok]
    oks = [n for n, ok in tested.items() if ok]
    low = max(fails, default=0)
    if oks:
        high = min(oks)
        if high - low <= 1:
            return high, []
        gap = high - low
        points = sorted({low + max(1, round(gap * (k + 1) / (width + 1))) for k in range(width)})
        return None, [n for n in points if low < n < high]
    if not tested:
        start = max(1, min(guess, top))
        return None, [n for n in range(start, start + width) if n <= top] or [top]
    if low >= top:
        return top, []
    stride = max(1, len(tested) // max(1, width))
    points = sorted({min(top, low + k * stride + 1) for k in range(width)})
    return None, [n for n in points if n not in tested]


def _row(
    target: QueueTarget,
    workers: int,
    slots: int,
    stats: dict[str, Any],
    replications: int,
    *,
    stage: str = "sweep",
) -> dict[str, Any]:
    return {
        "task_queue": target.task_queue.value,
        "stage": stage,
        "workers": workers,
        "slots": workers * slots,
        "replications": replications,
        "statistic": f"p{target.percentile:g} {target.metric}",
        "mean_h": stats["mean_h"],
        "ci_low_h": stats["ci_low_h"],
        "ci_high_h": stats["ci_high_h"],
        "target_h": target.max_hours,
        "meets": stats["meets"],
        "utilisation": stats["util"],
    }
