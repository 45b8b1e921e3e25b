"""A cached timeline keeps its events' case order: found once, the same answers as without it."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from protocol_lab.analytics import SAMPLE_PATH, Timelines, directly_follows, variants
from protocol_lab.analytics._case_order import find_case_order, known_order

from .factory import frame, row


def _shuffled_ties() -> pl.DataFrame:
    """Three interleaved workflows, rows out of time order, ties at the last and the terminal
    time (the first in the frame wins), one workflow open and one with two terminal events."""
    return frame(
        [
            row("b", "workflow_started", 1),
            row("a", "activity_completed", 5, step="s1"),
            row("a", "workflow_started", 0),
            row("c", "workflow_started", 2),
            row("b", "workflow_paused", 9),
            row("b", "workflow_resumed", 9),
            row("a", "workflow_failed", 7, detail="first"),
            row("a", "workflow_cancelled", 7, detail="second"),
            row("c", "activity_completed", 3, step="s1"),
            row("b", "activity_completed", 4, step="s2"),
            row("a", "activity_completed", 6, step="s2"),
            row("c", "workflow_completed", 8),
            row("c", "workflow_failed", 4),
        ]
    )


def test_order_is_a_stable_sort_by_time_then_by_first_appearance() -> None:
    events = _shuffled_ties()
    order = find_case_order(events)
    expected = (
        events.with_row_index("__row")
        .with_columns(pl.col("__row").min().over("workflow_id").alias("__first"))
        .sort("__first", "timestamp", maintain_order=True)
    )
    assert order.rows.to_list() == expected["__row"].to_list()
    assert order.ids.to_list() == ["b", "a", "c"]
    assert order.case.to_list() == [0] * 4 + [1] * 5 + [2] * 4
    assert order.timestamp.to_list() == expected["timestamp"].to_list()


def test_only_the_cached_frame_itself_knows_its_order() -> None:
    tl = Timelines.from_frame(_shuffled_ties()).cache()
    assert known_order(tl.events, column="workflow_id") is not None
    assert known_order(tl.events.filter(pl.col("step").is_not_null()), column="workflow_id") is None
    assert known_order(tl.events, column="workflow_name") is None
    assert known_order(Timelines.from_frame(_shuffled_ties()).events, column="workflow_id") is None


@pytest.mark.parametrize("events", [_shuffled_ties(), pl.read_parquet(SAMPLE_PATH)])
def test_cached_answers_are_the_plans_answers(events: pl.DataFrame) -> None:
    plain = Timelines.from_frame(events)
    cached = plain.cache()
    by_id = ["workflow_id"]
    assert_frame_equal(
        cached.workflows.collect().sort(by_id), plain.workflows.collect().sort(by_id)
    )
    order = known_order(cached.events, column="workflow_id")
    assert order is not None
    assert not order._labels  # the default labels wait for an analysis that asks for them
    for activity in (None, "event"):  # from the kept labels, and gathered as asked
        assert_frame_equal(
            directly_follows(cached.events, activity=activity).collect(),
            directly_follows(plain.events, activity=activity).collect(),
        )
        if activity is None:  # computed by the graph once, kept for the variants
            assert len(order._labels) == 1
            kept = order._labels[0]
        for steps_only in (True, False):
            for workflows in (None, plain.workflows):
                assert_frame_equal(
                    variants(
                        cached.events, workflows, activity=activity, steps_only=steps_only
                    ).collect(),
                    variants(
                        plain.events, workflows, activity=activity, steps_only=steps_only
                    ).collect(),
                )
    assert len(order._labels) == 1  # not computed again
    assert order._labels[0] is kept


def test_workflow_ties_go_to_the_first_row_in_the_frame() -> None:
    workflows = Timelines.from_frame(_shuffled_ties()).cache().workflows.collect()
    a, b, c = (workflows.filter(pl.col("workflow_id") == w).row(0, named=True) for w in "abc")
    assert (a["outcome"], a["end_detail"]) == ("failed", "first")
    assert b["status"] == "paused"
    assert c["outcome"] == "completed"
    assert workflows["workflow_id"].to_list() == ["b", "a", "c"]


def test_attributes_and_missing_times_are_kept() -> None:
    events = _shuffled_ties().with_columns(
        pl.when(pl.col("workflow_id") == "c")
        .then(None)
        .otherwise(pl.col("timestamp"))
        .alias("timestamp")
    )
    attributes = pl.DataFrame({"workflow_id": ["a", "b"], "priority": ["P1", "P2"]})
    plain = Timelines.from_frame(events, attributes, check=False)
    cached = plain.cache()
    assert_frame_equal(
        cached.workflows.collect().sort("workflow_id"),
        plain.workflows.collect().sort("workflow_id"),
    )
    assert_frame_equal(
        directly_follows(cached.events).collect(), directly_follows(plain.events).collect()
    )


def test_pairs_from_a_missing_label_stay_apart() -> None:
    events = frame(
        [
            row("a", "workflow_started", 0),
            row("a", "activity_completed", 1, step="x"),
            row("a", "workflow_paused", 2),
            row("a", "activity_completed", 3, step="y"),
        ]
    )
    for tl in (Timelines.from_frame(events), Timelines.from_frame(events).cache()):
        edges = directly_follows(tl.events, activity="step").collect()
        assert sorted(edges.select("source", "target").rows(), key=str) == [
            (None, "x"),
            (None, "y"),
        ]
