"""The shipped sample and its generator: size, coverage, determinism, the three-call promise."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import polars as pl
import pytest
from matplotlib.figure import Figure

from protocol_lab.analytics import SAMPLE_PATH, SlaSummary, Timelines
from protocol_lab.domain import (
    DATA_DIR,
    TERMINAL_EVENTS,
    ActivityStep,
    Outcome,
    TaskQueue,
    details,
    load_catalog,
)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_sample", DATA_DIR / "samples" / "make_sample.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sample() -> Timelines:
    return Timelines.from_file(SAMPLE_PATH).cache()


def test_sample_is_small_enough_for_git() -> None:
    assert SAMPLE_PATH.stat().st_size < 5_000_000


def test_sample_covers_queues_outcomes_and_weeks(sample: Timelines) -> None:
    events, workflows = sample.collect()
    assert workflows.height >= 20_000
    assert set(workflows["task_queue"].cast(pl.String)) == {q.value for q in TaskQueue}
    span = workflows["started_at"].max() - workflows["started_at"].min()  # type: ignore[operator]
    assert span.days >= 28
    outcomes = dict(workflows["outcome"].cast(pl.String).value_counts().iter_rows())
    assert outcomes["failed"] > 100
    assert outcomes["cancelled"] > 100
    assert outcomes["open"] > 0
    kinds = set(events["event"].cast(pl.String))
    assert {"compensation_started", "compensation_completed", "signal_received"} <= kinds
    assert {"workflow_paused", "workflow_resumed", "activity_failed"} <= kinds
    assert {"priority", "ticket_id"} <= set(workflows.columns)


def test_sample_uses_the_catalog_steps(sample: Timelines) -> None:
    catalog = load_catalog()
    pairs = (
        sample.events.filter(pl.col("step").is_not_null())
        .select("workflow_name", "step")
        .unique()
        .collect()
    )
    for name, step in pairs.iter_rows():
        assert step in {s.id for s in catalog[name].steps}


def _step_texts() -> pl.DataFrame:
    """The detail each step event of the catalog's plans must carry, by (plan, step, event,
    outcome)."""
    rows: list[tuple[str, str, str, str | None, str]] = []
    for plan in load_catalog().values():
        for step in plan.steps:
            rows.append((plan.name, step.id, "activity_started", None, details.step_running(step)))
            if isinstance(step, ActivityStep):
                done = details.step_done(step)
                rows.append((plan.name, step.id, "activity_completed", "completed", done))
                if step.compensation is not None:
                    undo = details.compensation(step.compensation)
                    rows.append((plan.name, step.id, "compensation_started", None, undo))
                    rows.append((plan.name, step.id, "compensation_completed", "completed", undo))
                continue
            received, timed_out = details.signal_received(step), details.signal_timed_out(step)
            rows.append((plan.name, step.id, "signal_received", "completed", received))
            for decision in step.reject_values[:1]:
                refused = details.signal_received(step, decision)
                rows.append((plan.name, step.id, "signal_received", "rejected", refused))
            rows.append((plan.name, step.id, "activity_completed", "timed_out", timed_out))
    return pl.DataFrame(
        rows, schema=["workflow_name", "step", "event", "outcome", "__expected"], orient="row"
    )


def test_sample_speaks_the_timeline_vocabulary(sample: Timelines) -> None:
    events = sample.events.collect().with_columns(pl.col("event", "outcome").cast(pl.String))
    # every step event carries its details text and its structured fields
    texts = _step_texts()
    steps = events.filter(pl.col("event").is_in(texts["event"].unique().to_list()))
    checked = steps.join(
        texts, on=["workflow_name", "step", "event", "outcome"], how="left", nulls_equal=True
    )
    assert checked.height == steps.height > 100_000
    assert checked["__expected"].null_count() == 0
    assert (checked["detail"] == checked["__expected"]).all()
    activities = events.filter(pl.col("attempt").is_not_null())
    assert set(activities["event"]) >= {"activity_started", "activity_completed", "activity_failed"}
    assert activities["attempt"].max() > 1  # type: ignore[operator]
    # every way a workflow ends, with the service's texts
    terminal = events.filter(pl.col("event").is_in(list(TERMINAL_EVENTS)))
    assert set(terminal["outcome"]) == {o.value for o in Outcome}
    ends = {
        (event, outcome): set(group["detail"])
        for (event, outcome), group in terminal.group_by("event", "outcome")
    }
    assert ends["workflow_completed", "completed"] == {details.WORKFLOW_COMPLETED}
    assert ends["workflow_cancelled", "cancelled"] == {details.CANCELLED_BY_USER}
    paused = events.filter(pl.col("event").is_in(["workflow_paused", "workflow_resumed"]))
    assert set(paused["detail"]) == {details.PAUSED_BY_USER, details.RESUMED_BY_USER}
    # a failed step ends its workflow with the step, the outcome and the same text
    failed = events.filter(pl.col("event") == "activity_failed").join(
        terminal, on="workflow_id", suffix="_end"
    )
    assert failed.height > 100
    assert (failed["event_end"] == "workflow_failed").all()
    for name in ("step", "outcome", "detail"):
        assert (failed[name] == failed[f"{name}_end"]).all()
    rejected = terminal.filter(pl.col("outcome") == "rejected")
    assert rejected.height > 10
    assert rejected["actor"].null_count() == 0
    catalog = load_catalog()
    for name, step, actor, detail in rejected.select(
        "workflow_name", "step", "actor", "detail"
    ).iter_rows():
        wait = catalog[name].step(step)
        assert not isinstance(wait, ActivityStep)
        assert detail == details.signal_rejected(wait, wait.reject_values[0], actor)


def test_sample_compensates_before_the_terminal_event(sample: Timelines) -> None:
    events = sample.events.collect()
    last = events.group_by("workflow_id").agg(
        pl.col("event").sort_by("timestamp").last().cast(pl.String).alias("last"),
        pl.col("event").cast(pl.String).is_in(list(TERMINAL_EVENTS)).any().alias("closed"),
        pl.col("event").cast(pl.String).str.starts_with("compensation_").any().alias("undone"),
    )
    closed = last.filter(pl.col("closed"))
    assert closed.filter(pl.col("undone")).height > 500
    assert closed["last"].is_in(list(TERMINAL_EVENTS)).all()


def test_sample_has_human_waits(sample: Timelines) -> None:
    steps = sample.steps().filter(pl.col("human")).collect()
    assert steps.height > 1000
    assert steps["human_wait_s"].median() > 600  # type: ignore[operator]


def test_generator_is_deterministic() -> None:
    gen = _generator()
    a_events, a_attrs = gen.generate(n_workflows=300, days=3)
    b_events, b_attrs = gen.generate(n_workflows=300, days=3)
    assert a_events.equals(b_events)
    assert a_attrs.equals(b_attrs)
    c_events, _ = gen.generate(n_workflows=300, days=3, seed=1)
    assert not a_events.equals(c_events)
    Timelines.from_frame(a_events, attributes=a_attrs).workflows.collect()  # valid rows


def test_three_calls_answer_sla_flow_and_bottleneck() -> None:
    tl = Timelines.from_file(SAMPLE_PATH)
    sla = tl.sla(by="task_queue")
    picture = tl.plot.cumulative_flow()
    worst = tl.bottlenecks().head(1)
    assert isinstance(sla, SlaSummary)
    assert sla.frame["task_queue"].cast(pl.String).to_list() == [q.value for q in TaskQueue]
    assert isinstance(picture, Figure)
    assert worst.height == 1
    assert worst["rank"].item() == 1
    assert worst["step"].item() == "provision_asset"
