"""Hand-made timelines with known answers, shared by the analytics tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from protocol_lab.domain import events_to_frame

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # a Tuesday, 09:00 in London (GMT)


def at(minutes: float) -> datetime:
    """T0 plus ``minutes``."""
    return T0 + timedelta(minutes=minutes)


def row(
    wid: str,
    event: str,
    minutes: float,
    *,
    step: str | None = None,
    detail: str | None = None,
    name: str = "Password Reset",
    queue: str = "itsm-workflows",
    trigger: str = "manual",
    attempt: int | None = None,
    outcome: str | None = None,
) -> dict[str, Any]:
    """One timeline row ``minutes`` after T0."""
    return {
        "workflow_id": wid,
        "workflow_name": name,
        "task_queue": queue,
        "trigger_type": trigger,
        "event": event,
        "timestamp": at(minutes),
        "detail": detail,
        "step": step,
        "attempt": attempt,
        "outcome": outcome,
    }


def frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows as a frame in the timeline schema."""
    return events_to_frame(rows)


def laptop(wid: str, *, start: float = 0.0, outcome: str = "completed") -> list[dict[str, Any]]:
    """A laptop provisioning workflow with known step times (minutes from ``start``).

    check_asset_availability: waits 1, runs 2; manager_approval: human wait 30;
    provision_asset: waits 10, runs 20; then completed at +64 (or cancelled during the
    approval wait at +20 with one compensation, or failed at provisioning).
    """
    name, queue = "Laptop Provisioning - New Hire", "itsm-accessories"

    def r(
        event: str, m: float, step: str | None = None, detail: str | None = None
    ) -> dict[str, Any]:
        return row(wid, event, start + m, step=step, detail=detail, name=name, queue=queue)

    rows = [
        r("workflow_started", 0, detail="Triggered by ticket TKT-1"),
        r("activity_started", 1, "check_asset_availability"),
        r("activity_completed", 3, "check_asset_availability"),
    ]
    if outcome == "cancelled":
        return [
            *rows,
            r("workflow_cancelled", 20, detail="Cancelled by user"),
            r("compensation_started", 20.5, "check_asset_availability", "Reserved asset released"),
            r(
                "compensation_completed",
                21.5,
                "check_asset_availability",
                "Reserved asset released",
            ),
        ]
    rows += [
        r("signal_received", 33, "manager_approval"),
        r("activity_started", 43, "provision_asset"),
    ]
    if outcome == "failed":
        return [
            *rows,
            r("activity_failed", 63, "provision_asset", "Provisioning asset failed: HTTP 503"),
            r("workflow_failed", 63, detail="Provisioning asset failed: HTTP 503"),
        ]
    return [
        *rows,
        r("activity_completed", 63, "provision_asset"),
        r("workflow_completed", 64, detail="Workflow completed"),
    ]
