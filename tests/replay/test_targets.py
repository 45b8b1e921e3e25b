"""The targets' explanations: a calibration error set against its observed quantile's noise,
a KS row against the noise of its sample sizes."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from protocol_lab.replay.targets import (
    TARGET_SCHEMA,
    _ks_rows,
    _noise,
    _noise_note,
    exact_model_meets_all,
    target_lines,
)


def test_a_calibration_miss_says_whether_sampling_noise_covers_it() -> None:
    row = {"stat": "p50", "relative_error": 0.39, "observed_spread": 0.41}
    assert _noise_note(row).endswith(
        "+/-41% from that sample (90% interval): the error is within that sampling noise"
    )
    row = {"stat": "p95", "relative_error": 0.54, "observed_spread": 0.16}
    assert "beyond that sampling noise" in _noise_note(row)
    assert _noise_note({"stat": "p95", "relative_error": 0.5, "observed_spread": None}) == ""
    open_ended = {
        "stat": "p95",
        "relative_error": 0.39,
        "observed_spread": math.inf,
        "n_observed": 12,
    }
    assert _noise_note(open_ended).startswith("; 12 values do not pin the observed p95 down")
    assert _noise_note(open_ended).endswith("the error is within that sampling noise")


def test_the_noise_of_a_ks_row_is_the_chance_two_samples_of_one_law_differ_that_much() -> None:
    """Checked against two-sample KS statistics of samples drawn from one distribution."""
    chance, critical = _noise(0.20, 400, 35)
    rng = np.random.default_rng(3)
    ks = [stats.ks_2samp(rng.normal(size=400), rng.normal(size=35)).statistic for _ in range(2000)]
    assert float(np.mean(np.asarray(ks) > 0.20)) == pytest.approx(chance, abs=0.04)
    assert float(np.quantile(ks, 0.95)) == pytest.approx(critical, abs=0.03)


def test_step_rows_multiply_into_the_chance_an_exact_simulation_meets_them_all() -> None:
    table = pl.DataFrame(
        {
            "step": ["a", "b"],
            "ks": [0.10, 0.30],
            "ks_pvalue": [0.5, 0.01],
            "n_sim": [400, 120],
            "n_real": [35, 12],
            "p50_sim_s": [1.0, 2.0],
            "p50_real_s": [1.0, 3.0],
            "p95_sim_s": [2.0, 4.0],
            "p95_real_s": [2.0, 5.0],
        }
    )
    steps = _ks_rows(table, target="steps", label=lambda r: r["step"], limit=0.20)
    cycles = _ks_rows(table, target="cycles", label=lambda r: r["step"], limit=0.20, paired=True)
    targets = pl.DataFrame(steps + cycles, schema=TARGET_SCHEMA)
    a, b = (_noise(0.20, n, m)[0] for n, m in [(400, 35), (120, 12)])
    assert targets["by_chance"].to_list() == pytest.approx([a, b, None, None])
    step_part = targets.filter(pl.col("target") == "steps")
    assert exact_model_meets_all(step_part) == pytest.approx((1 - a) * (1 - b))
    assert exact_model_meets_all(targets.filter(pl.col("target") == "cycles")) is None
    missed_cycle = targets.filter((pl.col("target") == "cycles") & ~pl.col("met"))
    assert "were they independent" in missed_cycle["why"][0]
    lines = target_lines(targets)
    assert lines[0].startswith("steps: 1 of 2 met; worst b at 0.300")
    assert f"meet all 2 with probability {(1 - a) * (1 - b) * 100:.2g}%" in lines[0]
    assert lines[1] == "cycles: 1 of 2 met; worst b at 0.300"
    # a step with two real cases misses by sampling alone almost surely
    tiny = table.with_columns(pl.lit(2).alias("n_real"))
    rows = _ks_rows(tiny, target="steps", label=lambda r: r["step"], limit=0.20)
    assert target_lines(pl.DataFrame(rows, schema=TARGET_SCHEMA))[0].endswith(
        "meet all 2 with probability below 0.01%)"
    )
