"""From a foreign log to a calibrated state-model simulation, and back to the log's measures.

The logs are ServiceNow-shaped exports made by ``data/samples/make_servicenow_log.py`` with
known parameters: the shipped 600-incident sample, and a fresh 20,000-incident log (over a
hundred times the events of the sample) whose fitted parameters are compared with the
generator's.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import polars as pl
import pytest
from typer.testing import CliRunner

from protocol_lab.analytics import Timelines
from protocol_lab.cli import app
from protocol_lab.domain import DATA_DIR, ScenarioError
from protocol_lab.sim import load_scenario, save_scenario
from protocol_lab.sim.log_calibration import (
    MIN_CASES,
    TARGET_RESOLUTION_ERROR,
    LogCalibration,
    calibrate_from_log,
    compare_resolution,
    plot_resolution_ecdf,
    resolution_times,
)
from protocol_lab.sim.state_flow import simulate_states

SAMPLE = DATA_DIR / "samples" / "servicenow_incidents.csv.gz"
BIG = 20_000


def _generator() -> ModuleType:
    path = DATA_DIR / "samples" / "make_servicenow_log.py"
    spec = importlib.util.spec_from_file_location("make_servicenow_log", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


GEN = _generator()


@pytest.fixture(scope="module")
def sample() -> Timelines:
    return Timelines.from_log(SAMPLE, preset="servicenow").cache()


@pytest.fixture(scope="module")
def sample_fit(sample: Timelines) -> LogCalibration:
    return calibrate_from_log(sample, seed=0, replications=3)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Timelines:
    file = tmp_path_factory.mktemp("big") / "incidents.csv"
    GEN.generate(BIG, seed=5).write_csv(file)
    return Timelines.from_log(file, preset="servicenow").cache()


@pytest.fixture(scope="module")
def big_fit(big: Timelines) -> LogCalibration:
    return calibrate_from_log(big, seed=1, replications=1)


def _scope(fit: LogCalibration) -> pl.DataFrame:
    return fit.routing.filter(pl.col("scope") == "*")


def _share(routing: pl.DataFrame, state: str, visit: int, to: pl.Expr) -> float:
    """Of the exits from ``state`` at ``visit``, the share that ``to`` picks."""
    part = routing.filter((pl.col("state") == state) & (pl.col("visit") == visit))
    return float(part.filter(to)["n"].sum() / part["n"].sum())


# -- the big generated log: near the generator's parameters, within 15% -------------------


def test_resolution_quantiles_of_a_large_log_are_within_the_target(
    big_fit: LogCalibration,
) -> None:
    error = big_fit.error
    assert error is not None
    assert error.height == 2 * len(GEN.PRIORITIES)
    assert error["n_log"].min() > 500  # type: ignore[operator]
    assert (error["relative_error"] <= TARGET_RESOLUTION_ERROR).all(), error
    assert big_fit.within_target
    assert big_fit.agrees


def test_arrival_rates_are_the_generators(big_fit: LogCalibration) -> None:
    weeks = GEN.DAYS / 7
    rates = dict(big_fit.arrivals.select("priority", "per_week").iter_rows())
    assert sum(rates.values()) == pytest.approx(BIG / weeks, rel=0.02)
    for priority, share in GEN.PRIORITIES.items():
        assert rates[priority] / sum(rates.values()) == pytest.approx(share, abs=0.01)
    streams = {s.category: s.tickets_per_week for s in big_fit.scenario.arrivals.streams}
    assert streams == pytest.approx(rates)


def test_the_profile_is_the_generators_hour_of_week_shape(big_fit: LogCalibration) -> None:
    weights = big_fit.scenario.arrivals.profile.normalised()
    day = weights[:120].reshape(5, 24)  # Monday to Friday
    weekend = weights[120:].reshape(2, 24)
    assert day.sum() / 5 / (weekend.sum() / 2) == pytest.approx(5.0, rel=0.1)
    working, night = day[:, 9:17].mean(), day[:, list(range(9)) + list(range(17, 24))].mean()
    assert working / night == pytest.approx(4.0, rel=0.1)


def test_routing_shares_are_the_generators(big_fit: LogCalibration) -> None:
    routing = _scope(big_fit)
    waits = pl.col("to_state").is_in(list(GEN.WAITS))
    assert _share(routing, "Active", 1, waits) == pytest.approx(GEN.P_WAIT, abs=0.02)
    reopen = pl.col("to_state") == "Active"
    assert _share(routing, "Resolved", 1, reopen) == pytest.approx(GEN.P_REOPEN, abs=0.01)
    assert _share(routing, "New", 1, pl.col("to_state") == "Active") == 1.0
    # the export never has a second wait
    assert routing.filter(waits & (pl.col("visit") > 1)).is_empty()


def test_the_simulation_reassigns_waits_and_reopens_as_the_log(big: Timelines) -> None:
    fit = calibrate_from_log(big, seed=2, measure=False)
    simulated = simulate_states(fit.scenario)
    for timelines, label in ((big, "log"), (simulated, "simulation")):
        moved = timelines.reassignment_summary()
        assert moved["reassigned_share"].item() == pytest.approx(GEN.P_REASSIGN, abs=0.03), label
        reopened = timelines.reopen_rate()
        assert reopened["reopen_rate"].item() == pytest.approx(GEN.P_REOPEN, abs=0.015), label
    waits = simulated.time_in_state().filter(pl.col("step").str.starts_with("Awaiting"))
    cases = simulated.workflows.select(pl.len()).collect().item()
    assert waits["cases"].sum() / cases == pytest.approx(GEN.P_WAIT, abs=0.03)


def test_dwells_near_the_generators(big_fit: LogCalibration) -> None:
    model = big_fit.scenario.states
    assert model is not None
    triage = [k for k in model.dwells if k.startswith("* | state=New")]
    assert triage
    for key in triage:
        assert model.mean_dwell_h(key) == pytest.approx(GEN.TRIAGE_MEAN_H, rel=0.1)
    reopen_after = [
        k
        for k in model.dwells
        if k.startswith("* | state=Resolved,") and k.endswith("to_state=Active")
    ]
    assert reopen_after
    for key in reopen_after:
        assert model.mean_dwell_h(key) == pytest.approx(GEN.REOPEN_AFTER_H, rel=0.15)
    kinds = set(big_fit.dwells["model"].to_list())
    assert kinds <= {"exponential", "lognormal", "gamma", "empirical"}


def test_capacity_is_the_peak_of_work_and_binds_in_the_simulation(
    big_fit: LogCalibration,
) -> None:
    model = big_fit.scenario.states
    assert model is not None
    assert model.work_states == ("Active",)  # New has no resolver, waits and Resolved pause
    table = big_fit.capacities
    assert set(table["group"].to_list()) == set(GEN.GROUPS)
    assert (table["resources"] == GEN.RESOLVERS_PER_GROUP).all()
    assert model.capacities == dict(table.select("group", "capacity").iter_rows())
    # one slot per group: cases wait for it, resolution takes longer
    tight = big_fit.scenario.model_copy(
        update={
            "states": model.model_copy(update={"capacities": dict.fromkeys(GEN.GROUPS, 1)}),
            "max_tickets": 2000,
        }
    )
    free = tight.model_copy(update={"states": model.model_copy(update={"capacities": {}})})
    slow = resolution_times(simulate_states(tight))["resolution_h"].median()
    fast = resolution_times(simulate_states(free))["resolution_h"].median()
    assert slow > 2 * fast  # type: ignore[operator]


# -- the shipped sample ---------------------------------------------------------------------


def test_the_shipped_sample_agrees_within_the_target_or_its_own_precision(
    sample_fit: LogCalibration,
) -> None:
    error = sample_fit.error
    assert error is not None
    assert set(error["priority"].to_list()) == set(GEN.PRIORITIES)
    assert sample_fit.agrees, error
    # where 600 incidents pin a quantile down to 15%, the simulation is within 15% of it
    precise = error.filter(pl.col("log_precise"))
    assert precise.height >= 3  # Moderate (285 cases) and Low (183) at least
    assert precise["within_target"].all(), precise
    assert error["within_sampling"].all(), error


def test_the_simulated_log_reads_like_the_log(sample_fit: LogCalibration) -> None:
    simulated = simulate_states(sample_fit.scenario)
    events, workflows = simulated.collect()
    assert simulated.vocabulary == "foreign"
    assert set(workflows["priority"].unique().to_list()) == set(GEN.PRIORITIES)
    states = set(events["step"].drop_nulls().unique().to_list())
    assert {"New", "Active", "Resolved"} <= states
    assert states <= {"New", "Active", "Resolved", *GEN.WAITS}
    groups = set(events["task_queue"].drop_nulls().unique().to_list())
    assert groups <= set(GEN.GROUPS)
    # the export's cut: nothing after the horizon, some cases still open there
    end = sample_fit.scenario.start.timestamp() + sample_fit.scenario.horizon_s
    assert events["timestamp"].max().timestamp() <= end  # type: ignore[union-attr]
    assert (workflows["outcome"] == "open").any()
    assert not simulated.sla(by="priority").frame.is_empty()


def test_same_seed_same_answer_another_seed_another(sample_fit: LogCalibration) -> None:
    scenario = sample_fit.scenario
    first, again = simulate_states(scenario), simulate_states(scenario)
    assert first.events.collect().equals(again.events.collect())
    other = simulate_states(scenario, seed=scenario.seed + 7)
    assert not first.events.collect().equals(other.events.collect())
    refit = calibrate_from_log(
        Timelines.from_log(SAMPLE, preset="servicenow"), seed=0, replications=3
    )
    assert refit.scenario == scenario
    assert refit.error is not None
    assert sample_fit.error is not None
    assert refit.error.equals(sample_fit.error)


def test_scenario_yaml_round_trip(sample_fit: LogCalibration, tmp_path: Path) -> None:
    file = save_scenario(sample_fit.scenario, tmp_path / "from_log.yaml")
    loaded = load_scenario(file)
    assert loaded == sample_fit.scenario
    assert (
        simulate_states(loaded)
        .events.collect()
        .equals(simulate_states(sample_fit.scenario).events.collect())
    )


def test_compare_resolution_of_a_log_with_itself_is_exact(sample: Timelines) -> None:
    table = compare_resolution(sample, sample)
    assert (table["relative_error"] == 0).all()
    assert table["agrees"].all()
    times = resolution_times(sample)
    # a resolved case's resolution runs from its opening to its last Resolved
    _, workflows = sample.collect()
    reopened = workflows.filter(pl.col("reopen_count") > 0)["workflow_id"].to_list()
    last = times.filter(pl.col("workflow_id").is_in(reopened))
    assert last.height > 0
    assert (
        last["resolved_at"]
        <= workflows.filter(pl.col("workflow_id").is_in(reopened))["resolved_at"].max()
    ).all()  # type: ignore[operator]


def test_the_picture_has_a_panel_per_priority_with_both_curves(
    sample: Timelines, sample_fit: LogCalibration
) -> None:
    assert len(sample_fit.simulated) == 3
    fig = plot_resolution_ecdf(sample, sample_fit.simulated)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == sorted(GEN.PRIORITIES)
    for ax in panels:
        assert [line.get_label() for line in ax.get_lines()][:2] == ["log", "simulated"]
        log_line = ax.get_lines()[0]
        n = resolution_times(sample).filter(pl.col("priority") == ax.get_title()).height
        assert len(log_line.get_xdata()) == n


def test_unlimited_capacity_on_request(sample: Timelines) -> None:
    fit = calibrate_from_log(sample, capacity="unlimited", measure=False)
    assert fit.scenario.states is not None
    assert fit.scenario.states.capacities == {}
    assert fit.capacities["capacity"].is_null().all()
    assert fit.error is None


HAND_WRITTEN = """
name: Two states by hand
start: 2026-11-02T00:00:00Z
horizon_hours: 168
drain: true
seed: 3
arrivals:
  streams:
    - {category: urgent, priority: P1, tickets_per_week: 200, titles: {case: 1}}
states:
  workflow_name: case
  work_states: [Work]
  capacities: {Team: 1}
  default:
    entries: [{state: Work, group: Team, probability: 1}]
    transitions:
      - {state: Work, group: Team, visit: 1, to_state: Parked, to_group: Team,
         probability: 1, dwell: work}
  dwells:
    work: {dist: fixed, seconds: 60}
"""


def test_a_hand_written_state_scenario_runs_and_queues(tmp_path: Path) -> None:
    file = tmp_path / "by_hand.yaml"
    file.write_text(HAND_WRITTEN, encoding="utf-8")
    scenario = load_scenario(file)
    events, workflows = simulate_states(scenario).collect()
    assert workflows.height > 150
    assert (workflows["priority"] == "urgent").all()
    # Parked has no way out: a case ends there, its interval closed at once
    parked = events.filter(pl.col("step") == "Parked")
    assert parked.height == 2 * workflows.height
    assert (workflows["outcome"] == "completed").all()
    # one slot, a minute of work each: cases finish work a minute apart at least, and the
    # time in the state (entered on arrival, as a log shows it) includes the wait for the slot
    done = events.filter((pl.col("step") == "Work") & (pl.col("event") == "activity_completed"))
    gaps = done["timestamp"].sort().diff().drop_nulls().dt.total_seconds()
    assert gaps.min() >= 60  # type: ignore[operator]
    steps = Timelines.from_frame(events, check=False, vocabulary="foreign").steps().collect()
    in_work = steps.filter(pl.col("step") == "Work")["total_s"]
    assert in_work.min() == 60  # type: ignore[operator]
    assert in_work.max() > 60  # type: ignore[operator]


def test_a_state_model_with_leaky_routing_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "leaky.yaml"
    file.write_text(HAND_WRITTEN.replace("probability: 1, dwell", "probability: 0.5, dwell"))
    with pytest.raises(ScenarioError, match="add up to"):
        load_scenario(file)


# -- bad input ------------------------------------------------------------------------------


def test_a_log_without_priority_is_refused(sample: Timelines) -> None:
    bare = Timelines(events=sample.events, workflows=sample.workflows.drop("priority"))
    with pytest.raises(ValueError, match="no priority"):
        calibrate_from_log(bare)


def test_too_few_cases_are_refused(sample: Timelines) -> None:
    ids = sample.workflows.select("workflow_id").head(MIN_CASES - 1).collect()["workflow_id"]
    few = sample.filter(pl.col("workflow_id").is_in(ids.to_list()))
    with pytest.raises(ValueError, match=f"at least {MIN_CASES}"):
        calibrate_from_log(few)


def test_a_log_of_instants_is_refused(sample: Timelines) -> None:
    events, workflows = sample.collect()
    instants = Timelines.from_frame(
        events.filter(pl.col("event") != "activity_started"),
        workflows.select("workflow_id", "priority"),
        check=False,
        vocabulary="foreign",
    )
    with pytest.raises(ValueError, match="instants"):
        calibrate_from_log(instants)


def test_a_scenario_without_states_cannot_be_simulated_as_states() -> None:
    with pytest.raises(ScenarioError, match="no states"):
        simulate_states(load_scenario("mmc_validation"))


# -- the command ------------------------------------------------------------------------------


def test_logs_calibrate_writes_the_scenario_and_prints_the_distance(tmp_path: Path) -> None:
    out = tmp_path / "scenario.yaml"
    res = CliRunner().invoke(
        app,
        ["logs", "calibrate", str(SAMPLE), "--preset", "servicenow", "--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    assert "p95" in res.output
    assert "3 - Moderate" in res.output
    assert f"scenario written to {out}" in res.output
    assert load_scenario(out).states is not None
    simulated = tmp_path / "simulated.parquet"
    res = CliRunner().invoke(
        app, ["logs", "simulate", str(out), "--seed", "4", "--out", str(simulated)]
    )
    assert res.exit_code == 0, res.output
    assert "p95_h" in res.output
    again = Timelines.from_file(simulated)
    assert again.vocabulary == "foreign"
    assert set(again.workflows.collect()["priority"].to_list()) == set(GEN.PRIORITIES)
    # the workflow simulator does not take a states scenario
    res = CliRunner().invoke(app, ["simulate", str(out), "--out", str(tmp_path / "x.parquet")])
    assert isinstance(res.exception, ValueError)
    assert "logs simulate" in str(res.exception)
