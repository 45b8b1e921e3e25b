"""The shipped sample and its generator: size, coverage, determinism, the three-call promise."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import polars as pl
import pytest
from matplotlib.figure import Figure

from protocol_lab.analytics import SAMPLE_PATH, SlaSummary, Timelines
from protocol_lab.domain import DATA_DIR, TaskQueue, load_catalog


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
