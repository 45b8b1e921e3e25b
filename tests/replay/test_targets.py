"""The targets' explanations: a calibration error set against its observed quantile's noise."""

from __future__ import annotations

from protocol_lab.replay.targets import _noise_note


def test_a_calibration_miss_says_whether_sampling_noise_covers_it() -> None:
    row = {"stat": "p50", "relative_error": 0.39, "observed_spread": 0.41}
    assert _noise_note(row).endswith(
        "+/-41% from that sample (90% interval): the error is within that sampling noise"
    )
    row = {"stat": "p95", "relative_error": 0.54, "observed_spread": 0.16}
    assert "beyond that sampling noise" in _noise_note(row)
    assert _noise_note({"stat": "p95", "relative_error": 0.5, "observed_spread": None}) == ""
