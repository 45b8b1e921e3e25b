"""Conformance of timelines to the catalog's plans: fitness per workflow and deviating cases.

A plan is a sequence of steps, so a case conforms when it runs the plan's steps in plan order:
all of them if it completed, and every step up to the furthest one it reached if it failed, was
cancelled or is still open (a failure or cancellation legitimately stops a plan there). A case's
steps are the step ids of its activity and signal events (compensations and workflow events left
out), in order of their first event.

The measure is alignment-based fitness with unit costs. Because a plan runs each step once in a
fixed order, the optimal alignment of a case's step sequence with the expected steps keeps the
longest run of steps in plan order (a longest increasing subsequence of their plan positions,
O(k log k) for k steps); every other observed step is a move on the log (done out of order, or
unknown to the plan), every expected step outside it a move on the model (skipped, or done out
of order), and each unexpected signal one more move on the log. Then

    fitness = 1 - (log moves + model moves) / (observed steps + unexpected signals + expected)

which is 1 for a case that follows its plan and 0 for one that shares no step with it. A signal
is unexpected when its step is not a signal step of the plan, or the step already took one.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import polars as pl

from protocol_lab.analytics._frames import ENGINE

if TYPE_CHECKING:
    from protocol_lab.analytics.timelines import Timelines
    from protocol_lab.domain import Catalog

__all__ = ["CASE_SCHEMA", "Conformance", "conformance", "in_plan_order"]

_STEP_EVENTS: Final = (
    "activity_started",
    "activity_completed",
    "activity_failed",
    "signal_received",
)

CASE_SCHEMA: Final = pl.Schema(
    {
        "workflow_id": pl.String(),
        "workflow_name": pl.String(),
        "outcome": pl.String(),
        "in_catalog": pl.Boolean(),
        "expected": pl.Int64(),
        "observed": pl.Int64(),
        "fitness": pl.Float64(),
        "skipped": pl.List(pl.String()),
        "out_of_order": pl.List(pl.String()),
        "unknown_steps": pl.List(pl.String()),
        "unexpected_signals": pl.List(pl.String()),
    }
)
"""Columns of :attr:`Conformance.cases`: per case, its expected and observed step counts, its
fitness (null for a workflow the catalog has no plan for) and its deviations by step id."""


def in_plan_order(positions: Sequence[int]) -> list[int]:
    """Indexes into ``positions`` of a longest strictly increasing run (O(k log k))."""
    tails: list[int] = []  # tails[j]: the smallest last position of an increasing run of j + 1
    tail_index: list[int] = []
    parent: list[int] = [-1] * len(positions)
    for i, value in enumerate(positions):
        j = bisect_left(tails, value)
        if j == len(tails):
            tails.append(value)
            tail_index.append(i)
        else:
            tails[j] = value
            tail_index[j] = i
        parent[i] = tail_index[j - 1] if j else -1
    kept: list[int] = []
    i = tail_index[-1] if tail_index else -1
    while i >= 0:
        kept.append(i)
        i = parent[i]
    return kept[::-1]


@dataclass(frozen=True)
class Conformance:
    """The result of :func:`conformance`: one row per case, and the summary per workflow."""

    cases: pl.DataFrame
    """Per case (:data:`CASE_SCHEMA`)."""

    @property
    def workflows(self) -> pl.DataFrame:
        """Per workflow name: ``cases``, ``fitting`` (fitness 1), ``fitting_share``,
        ``fitness`` (of the whole log: 1 - all moves / all worst-case moves), ``mean_fitness``,
        and how many cases skipped a step, ran one out of order, ran an unknown step or took an
        unexpected signal."""
        cases = self.cases.filter(pl.col("in_catalog"))
        moves = pl.col("observed") + pl.col("unexpected_signals").list.len() + pl.col("expected")
        return (
            cases.with_columns(moves.alias("__worst"))
            .group_by("workflow_name")
            .agg(
                pl.len().alias("cases"),
                (pl.col("fitness") == 1.0).sum().alias("fitting"),
                (1 - ((1 - pl.col("fitness")) * pl.col("__worst")).sum() / pl.col("__worst").sum())
                .fill_nan(1.0)
                .alias("fitness"),
                pl.col("fitness").mean().alias("mean_fitness"),
                *[
                    (pl.col(c).list.len() > 0).sum().alias(f"with_{c}")
                    for c in ("skipped", "out_of_order", "unknown_steps", "unexpected_signals")
                ],
            )
            .with_columns((pl.col("fitting") / pl.col("cases")).alias("fitting_share"))
            .sort("workflow_name")
        )

    def deviating(self) -> pl.DataFrame:
        """The cases of a known plan that do not follow it, least fitting first."""
        return self.cases.filter(pl.col("in_catalog") & (pl.col("fitness") < 1.0)).sort(
            "fitness", "workflow_id"
        )


def _plan_positions(catalog: Catalog) -> pl.LazyFrame:
    from protocol_lab.domain import SignalStep

    rows = [
        (plan.name, step.id, position, isinstance(step, SignalStep))
        for plan in catalog.values()
        for position, step in enumerate(plan.steps)
    ]
    return pl.LazyFrame(
        rows,
        schema={
            "workflow_name": pl.String,
            "step": pl.String,
            "__position": pl.Int64,
            "__signal": pl.Boolean,
        },
        orient="row",
    )


def _case_row(
    plan: Sequence[str] | None,
    outcome: str,
    steps: Sequence[str],
    positions: Sequence[int | None],
) -> tuple[bool, int, int, float | None, list[str], list[str], list[str]]:
    """in_catalog, expected, observed, fitness (without signals), skipped, out_of_order,
    unknown."""
    if plan is None:
        return False, 0, len(steps), None, [], [], []
    known = [(s, p) for s, p in zip(steps, positions, strict=True) if p is not None]
    unknown = [s for s, p in zip(steps, positions, strict=True) if p is None]
    reached = max((p for _, p in known), default=-1) + 1
    expected = len(plan) if outcome == "completed" else reached
    kept = {known[i][0] for i in in_plan_order([p for _, p in known])}
    out_of_order = [s for s, _ in known if s not in kept]
    seen = {s for s, _ in known}
    skipped = [s for s in plan[:expected] if s not in seen]
    return True, expected, len(steps), None, skipped, out_of_order, unknown


def conformance(timelines: Timelines, *, catalog: Catalog | None = None) -> Conformance:
    """Replay every case of ``timelines`` against its workflow's plan in ``catalog`` (default:
    ``data/definitions``): fitness per case and per workflow, and the deviations (see the module
    docstring). Workflows without a plan in the catalog are listed with a null fitness."""
    from protocol_lab.domain import load_catalog

    cat = catalog if catalog is not None else load_catalog()
    plans = {name: [s.id for s in plan.steps] for name, plan in cat.items()}
    positions = _plan_positions(cat)
    events = (
        timelines.events.with_row_index("__i")
        .with_columns(pl.col("event").cast(pl.String), pl.col("workflow_name").cast(pl.String))
        .filter(pl.col("event").is_in(_STEP_EVENTS))
    )
    firsts = (
        events.filter(pl.col("step").is_not_null())
        .group_by("workflow_id", "workflow_name", "step")
        .agg(pl.col("timestamp").min().alias("__t"), pl.col("__i").min())
        .join(positions, on=["workflow_name", "step"], how="left")
        .sort("workflow_id", "__t", "__i")
        .group_by("workflow_id", maintain_order=True)
        .agg(pl.col("step").alias("__steps"), pl.col("__position").alias("__positions"))
    )
    signals = (
        events.filter(pl.col("event") == "signal_received")
        .join(positions, on=["workflow_name", "step"], how="left")
        .sort("workflow_id", "timestamp", "__i")
        .with_columns(pl.int_range(pl.len()).over("workflow_id", "step").alias("__nth"))
        .filter(pl.col("__signal").is_null() | ~pl.col("__signal") | (pl.col("__nth") > 0))
        .group_by("workflow_id")
        .agg(pl.coalesce("step", "detail", pl.lit("?")).alias("unexpected_signals"))
    )
    frame = (
        timelines.workflows.select(
            "workflow_id",
            pl.col("workflow_name").cast(pl.String),
            pl.col("outcome").cast(pl.String),
        )
        .join(firsts, on="workflow_id", how="left")
        .join(signals, on="workflow_id", how="left")
        .sort("workflow_id")
        .collect(engine=ENGINE)
    )
    rows = []
    for wid, name, outcome, steps, pos, unexpected in frame.iter_rows():
        in_catalog, expected, observed, _, skipped, late, unknown = _case_row(
            plans.get(name), outcome, steps or [], pos or []
        )
        extra = list(unexpected or [])
        fitness: float | None = None
        if in_catalog:
            moves_on_log = len(late) + len(unknown) + len(extra)
            moves_on_model = expected - (observed - len(late) - len(unknown))
            worst = observed + len(extra) + expected
            fitness = 1.0 - (moves_on_log + moves_on_model) / worst if worst else 1.0
        rows.append(
            (
                wid,
                name,
                outcome,
                in_catalog,
                expected,
                observed,
                fitness,
                skipped,
                late,
                unknown,
                extra,
            )
        )
    cases = pl.DataFrame(rows, schema=CASE_SCHEMA, orient="row") if rows else CASE_SCHEMA.to_frame()
    return Conformance(cases=cases)
