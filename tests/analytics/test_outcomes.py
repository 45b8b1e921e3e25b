"""Failure and cancellation rates, reasons, variants."""

from __future__ import annotations

import polars as pl
import pytest

from protocol_lab.analytics import Timelines, failure_rates, failure_reasons, variants

from .factory import frame, laptop, row


def _timelines() -> Timelines:
    rows = (
        laptop("ok1")
        + laptop("ok2", start=10)
        + laptop("f1", start=20, outcome="failed")
        + laptop("c1", start=30, outcome="cancelled")
        + [row("open", "workflow_started", 5, queue="itsm-fleet", name="Device Enrollment")]
    )
    return Timelines.from_frame(frame(rows))


def test_failure_rates_per_queue() -> None:
    out = failure_rates(_timelines().workflows, by="task_queue").collect()
    acc = out.filter(pl.col("task_queue") == "itsm-accessories").row(0, named=True)
    assert (acc["workflows"], acc["completed"], acc["failed"], acc["cancelled"], acc["open"]) == (
        4,
        2,
        1,
        1,
        0,
    )
    assert acc["failure_rate"] == pytest.approx(0.25)
    assert acc["cancellation_rate"] == pytest.approx(0.25)
    fleet = out.filter(pl.col("task_queue") == "itsm-fleet").row(0, named=True)
    assert fleet["open"] == 1
    assert fleet["failure_rate"] is None or fleet["failure_rate"] != fleet["failure_rate"]


def test_failure_reasons() -> None:
    out = failure_reasons(_timelines().workflows).collect()
    assert out.select("outcome", "reason", "n", "share").rows() == [
        ("cancelled", "Cancelled by user", 1, 1.0),
        ("failed", "Provisioning asset failed: HTTP 503", 1, 1.0),
    ]


def test_variants_frequency_and_duration() -> None:
    tl = _timelines()
    out = variants(tl.events, tl.workflows).collect()
    top = out.row(0, named=True)
    assert top["variant"] == (
        "check_asset_availability > manager_approval > provision_asset > workflow_completed"
    )
    assert (top["n"], top["length"]) == (2, 4)
    assert top["share"] == pytest.approx(2 / 4)  # the open one has no step yet
    assert top["mean_h"] == pytest.approx(64 / 60)
    assert set(out["variant"]) == {
        top["variant"],
        "check_asset_availability > manager_approval > provision_asset > workflow_failed",
        "check_asset_availability > workflow_cancelled",
    }


def test_variants_with_every_event_and_a_custom_label() -> None:
    tl = _timelines()
    full = variants(tl.events.collect(), steps_only=False, activity=pl.col("event").cast(pl.String))
    assert isinstance(full, pl.DataFrame)
    assert full["variant"].str.starts_with("workflow_started").all()
    assert full["n"].sum() == 5
