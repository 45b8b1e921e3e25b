"""Calibration recovers a scenario from a log the simulator made from known parameters."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from protocol_lab.analytics import Timelines
from protocol_lab.domain.catalog import ActivityKind
from protocol_lab.domain.durations import DurationModel, Exponential, Fixed, Gamma, LogNormal
from protocol_lab.domain.queues import TaskQueue
from protocol_lab.sim import TaskQueueConfig, load_scenario, simulate
from protocol_lab.sim.calibration import _quantile_spread, calibrate, fit_duration
from protocol_lab.sim.platform import PlatformConfig, QueueLatency


def test_fit_duration_picks_the_family_that_made_the_sample() -> None:
    rng = np.random.default_rng(3)
    assert isinstance(fit_duration(rng.lognormal(np.log(300), 0.9, 3000)).model, LogNormal)
    assert isinstance(fit_duration(rng.gamma(6.0, 50.0, 3000)).model, Gamma)
    assert isinstance(fit_duration(np.full(50, 2.0)).model, Fixed)
    fitted = fit_duration(rng.exponential(60.0, 5000))
    assert isinstance(fitted.model, Exponential | Gamma)
    assert abs(fitted.model.mean() - 60.0) < 3.0


def test_censored_waits_pull_the_fit_towards_the_truth() -> None:
    rng = np.random.default_rng(4)
    waits = rng.lognormal(np.log(5400), 1.1, 4000)
    timeout = 20000.0
    seen, cut = waits[waits < timeout], np.full(int((waits >= timeout).sum()), timeout)
    naive = fit_duration(seen).model
    fair = fit_duration(seen, cut).model
    assert isinstance(fair, LogNormal)
    assert abs(fair.median_s - 5400) / 5400 < 0.1
    assert abs(fair.median_s - 5400) < abs(naive.mean() - waits.mean())


def test_mmc_log_is_reproduced_within_ten_percent() -> None:
    """M/M/8 at 85% utilisation, ten days: the fitted scenario's p50/p95 cycle time and
    worker-queue wait are within 10% of the log's (peers miss this wait by about ten times)."""
    truth = load_scenario("mmc_validation").with_horizon(240, warmup_hours=0)
    observed = simulate(truth).timelines
    cal = calibrate(observed, base=truth, replications=3)
    assert cal.workers.filter(pl.col("task_queue") == "itsm-workflows")["workers"].item() == 8
    assert cal.durations["model"].item() in ("exponential", "gamma")
    assert cal.error is not None
    assert set(cal.error["quantity"]) == {"cycle_time", "queue_wait"}
    assert cal.max_error() < 0.10, cal.error


def test_service_desk_password_resets_within_ten_percent() -> None:
    """Two weeks of password resets and device enrolments on the shipped catalog: the
    password-reset queue's p50/p95 cycle time and signal wait come back within 10%."""
    base = load_scenario("demo_day")
    streams = [s for s in base.arrivals.streams if s.category in ("access", "device")]
    streams[0] = streams[0].model_copy(
        update={"titles": {"Password reset": 1.0}, "resolution": None}
    )
    truth = base.model_copy(
        update={
            "arrivals": base.arrivals.model_copy(update={"streams": tuple(streams)}),
            "task_queues": {
                **base.task_queues,
                "itsm-workflows": TaskQueueConfig(workers=1, slots=1),
            },
        }
    ).with_horizon(336, warmup_hours=0)
    observed = simulate(truth).timelines
    cal = calibrate(observed, base=truth, replications=3)
    assert cal.error is not None
    resets = cal.error.filter(pl.col("task_queue") == "itsm-workflows")
    assert set(resets["quantity"]) >= {"cycle_time", "signal_wait"}
    worst = resets.filter(pl.col("quantity") != "queue_wait")["relative_error"].max()
    assert worst is not None
    assert worst < 0.10, resets  # type: ignore[operator]
    fitted = cal.signals.filter(pl.col("signal") == "identity_verified").row(0, named=True)
    assert fitted["model"] == "lognormal"


def test_platform_latency_is_recovered_from_a_simulator_log() -> None:
    """Two weeks of the demo day simulated for a replay at 600x with known platform latency:
    calibration gives back each latency within 10% (wall clock), and the schedule-to-start,
    a difference of two noisy gaps, within 10% over all queues and 20% on each."""
    truth_platform = PlatformConfig(
        workflow_task=LogNormal(median_s=0.025, sigma=0.4),
        first_workflow_task=Gamma(shape=4, mean_s=0.05),
        signal_delivery=Fixed(seconds=0.03),
        default_queue=QueueLatency(
            schedule_to_start=Exponential(mean_s=0.01),
            activity_overhead=LogNormal(median_s=0.015, sigma=0.5),
        ),
    )
    truth = (
        load_scenario("demo_day")
        .with_horizon(24 * 14, warmup_hours=0)
        .with_platform(truth_platform, compression=600)
    )
    cal = calibrate(simulate(truth).timelines, base=truth, measure=False)
    fitted = cal.scenario.platform
    assert fitted.compression == 600
    assert cal.platform is not None
    table = cal.platform

    def close(model: DurationModel | None, expected: float, tolerance: float = 0.10) -> bool:
        return model is not None and abs(model.mean() - expected) <= tolerance * expected

    assert close(fitted.workflow_task, truth_platform.workflow_task.mean()), table
    assert close(fitted.first_workflow_task, 0.05), table
    assert close(fitted.signal_delivery, 0.03), table
    overhead = truth_platform.default_queue.activity_overhead.mean()
    for queue in TaskQueue:
        latency = fitted.queue(queue)
        assert close(latency.activity_overhead, overhead), (queue, table)
        assert close(latency.schedule_to_start, 0.01, 0.20), (queue, table)
    s2s = table.filter(pl.col("parameter") == "schedule_to_start")
    weights = s2s["n"].to_numpy()
    pooled = float(np.average(s2s["mean_ms"].to_numpy(), weights=weights))
    assert abs(pooled - 10.0) <= 1.0, table
    # the overhead is the platform's: the fitted durations of fixed steps do not hold it
    reset = cal.scenario.durations["Password Reset"]["close_ticket"]
    assert reset.mean() == pytest.approx(1.0, abs=0.5)


def test_a_queue_with_few_steps_takes_the_pooled_activity_overhead() -> None:
    """Below eight steps of known duration a queue's overhead is every queue's pool (its own
    few would be noise); with enough steps it is its own, even when it differs."""
    truth_platform = PlatformConfig(
        default_queue=QueueLatency(activity_overhead=Fixed(seconds=0.015)),
        queues={TaskQueue.HIGH_PRIORITY: QueueLatency(activity_overhead=Fixed(seconds=0.060))},
    )
    truth = (
        load_scenario("demo_day")
        .with_horizon(24 * 3, warmup_hours=0)
        .with_platform(truth_platform, compression=600)
    )
    log = simulate(truth).timelines
    high = pl.col("task_queue") == TaskQueue.HIGH_PRIORITY.value

    def high_priority_overhead(timelines: Timelines) -> tuple[int, float, str]:
        table = calibrate(timelines, base=truth, measure=False).platform
        assert table is not None
        row = table.filter((pl.col("parameter") == "activity_overhead") & high).row(0, named=True)
        return row["n"], row["mean_ms"], row["source"]

    n, mean_ms, source = high_priority_overhead(log)
    assert n >= 8
    assert source == "fixed-duration steps"
    assert mean_ms == pytest.approx(60.0)
    first = log.workflows.filter(high).select("workflow_id").head(1).collect()["workflow_id"]
    few = log.filter(~high | pl.col("workflow_id").is_in(first.implode()))
    n, mean_ms, source = high_priority_overhead(few)
    assert source == "fixed-duration steps, all queues"
    assert n > 100
    assert mean_ms < 20.0


def test_waits_a_timeout_ended_are_censored_not_fitted_as_answers() -> None:
    """VPN revocations whose security confirmation timed out (and went on) count as waits of
    at least the timeout, not as answers at the timeout: the fit keeps the truth's shape."""
    truth = load_scenario("demo_day").with_horizon(24 * 7, warmup_hours=0)
    observed = simulate(truth).timelines
    steps = observed.steps().collect()
    waits = steps.filter(pl.col("step") == "security_confirmation")
    assert (waits["outcome"] == "timed_out").sum() > 0
    cal = calibrate(observed, base=truth, measure=False)
    fitted = cal.signals.filter(pl.col("step") == "security_confirmation").row(0, named=True)
    assert fitted["n"] == (waits["outcome"] != "timed_out").sum()
    assert fitted["model"] == "lognormal"
    assert fitted["ks"] < 0.15


def test_activity_kinds_keep_their_own_overhead() -> None:
    """A ticket update costs the platform more than putting a job on a queue: the simulator
    adds each kind's overhead to its steps, and calibration gives each kind back within 10%
    (wall clock), whatever queue the step ran on; steps of known duration keep it."""
    truth_platform = PlatformConfig(
        workflow_task=LogNormal(median_s=0.025, sigma=0.4),
        default_queue=QueueLatency(activity_overhead=Fixed(seconds=0.010)),
        activities={
            ActivityKind.TICKET_UPDATE: LogNormal(median_s=0.030, sigma=0.3),
            ActivityKind.ENQUEUE_JOB: Gamma(shape=4, mean_s=0.012),
        },
    )
    truth = (
        load_scenario("demo_day")
        .as_the_service_runs()
        .with_horizon(24 * 7, warmup_hours=0)
        .with_platform(truth_platform, compression=600)
    )
    log = simulate(truth).timelines
    steps = log.steps().collect()
    close_ticket = steps.filter(pl.col("step") == "close_ticket")["active_s"].mean()
    email_user = steps.filter(pl.col("step") == "email_user")["active_s"].mean()
    assert close_ticket == pytest.approx(0.030 * np.exp(0.3**2 / 2) * 600, rel=0.1)
    assert email_user == pytest.approx(0.012 * 600, rel=0.1)

    cal = calibrate(log, base=truth, measure=False)
    fitted = cal.scenario.platform.activities
    for kind, model in truth_platform.activities.items():
        assert fitted[kind].mean() == pytest.approx(model.mean(), rel=0.1), cal.platform
    # the known (zero) durations are kept, not refitted from what is left of the overhead
    assert cal.scenario.durations["Password Reset"]["close_ticket"] == Fixed(seconds=0.0)


def test_each_workflow_keeps_the_hours_it_starts_at() -> None:
    """Escalations start at night, laptops in office hours: calibration gives each workflow
    its own hour-of-week profile, so a night workflow is not moved to the office hours where
    most workflows start (its business-hours waits would then end sooner)."""
    day = load_scenario("demo_day").as_the_service_runs().with_horizon(24 * 7, warmup_hours=0)
    log = simulate(day).timelines
    started = log.workflows.select("workflow_name", "started_at").collect()
    cal = calibrate(log, base=day, measure=False)

    def night_share(hours: np.ndarray) -> float:
        return float(((hours < 7) | (hours >= 19)).mean())

    for stream in cal.scenario.arrivals.streams:
        (name,) = stream.titles
        assert stream.profile is not None
        weights = np.asarray(stream.profile.weights).reshape(7, 24).sum(axis=0)
        modelled = float(weights[list(range(7)) + list(range(19, 24))].sum() / weights.sum())
        hours = started.filter(pl.col("workflow_name") == name)["started_at"].dt.hour()
        observed = night_share(hours.to_numpy())
        assert modelled == pytest.approx(observed, abs=0.1), name
    by_name = {next(iter(s.titles)): s for s in cal.scenario.arrivals.streams}
    escalation = by_name["SLA Escalation"].profile
    laptop = by_name["Laptop Provisioning - New Hire"].profile
    assert escalation is not None
    assert laptop is not None
    assert escalation.weights != laptop.weights


def test_a_slower_wait_task_is_told_apart_from_the_task_before_activities() -> None:
    """The service's workflow records its state when a wait begins and when it closes, so those
    workflow tasks cost more than the one before an activity: the simulator puts ``wait_task``
    there, and calibration gives both back within 10% instead of one mean of the two."""
    truth_platform = PlatformConfig(
        workflow_task=LogNormal(median_s=0.020, sigma=0.3),
        wait_task=LogNormal(median_s=0.045, sigma=0.3),
        default_queue=QueueLatency(activity_overhead=Fixed(seconds=0.010)),
    )
    truth = (
        load_scenario("demo_day")
        .as_the_service_runs()
        .with_horizon(24 * 7, warmup_hours=0)
        .with_platform(truth_platform, compression=600)
    )
    cal = calibrate(simulate(truth).timelines, base=truth, measure=False)
    fitted = cal.scenario.platform
    assert fitted.wait_task is not None, cal.platform
    assert fitted.wait_task.mean() == pytest.approx(
        truth_platform.wait_task.mean(),  # type: ignore[union-attr]
        rel=0.1,
    )
    assert fitted.workflow_task.mean() == pytest.approx(
        truth_platform.workflow_task.mean(), rel=0.1
    ), cal.platform
    for queue in TaskQueue:
        assert fitted.queue(queue).schedule_to_start.mean() <= 0.002, (queue, cal.platform)


def _spreads(values: np.ndarray) -> dict[str, float]:
    obs = pl.DataFrame({"task_queue": "q", "quantity": "cycle_time", "value_s": values})
    table = _quantile_spread(obs)
    return dict(zip(table["stat"], table["observed_spread"], strict=True))


def test_a_quantile_the_sample_cannot_bound_has_an_open_interval() -> None:
    """The p95 of a dozen values would need an order statistic past the largest: its spread is
    infinite, where the p50 of the same values and the p95 of four hundred are bounded, and the
    bounded interval covers the true quantile about 90% of the time."""
    rng = np.random.default_rng(11)
    few = _spreads(rng.exponential(100.0, 12))
    assert few["p95"] == math.inf
    assert math.isfinite(few["p50"])
    true_p95 = 100.0 * math.log(20.0)
    covered = 0
    for _ in range(400):
        sample = rng.exponential(100.0, 400)
        observed = float(np.quantile(sample, 0.95))
        covered += abs(observed - true_p95) <= _spreads(sample)["p95"] * observed
    assert 0.8 <= covered / 400 <= 0.97
