"""The timeline recorder: simulated workflow events as flat columns, built into the shared schema.

Every event is three appends to typed arrays (workflow index, text code, time); the text code
points into an interned table of (event, step id, detail, attempt, outcome, actor), so a run keeps
no per-event Python objects. Per-workflow facts (plan, task queue, trigger, ticket, priority,
category, start, end, status) are parallel arrays too. :meth:`TimelineRecorder.events_frame`
turns the columns into a polars frame with :data:`protocol_lab.domain.TIMELINE_SCHEMA` in a few
vectorised steps.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from datetime import datetime
from enum import IntEnum
from typing import Final

import numpy as np
import polars as pl

from protocol_lab.domain.queues import TaskQueue
from protocol_lab.domain.tickets import Priority
from protocol_lab.domain.timeline import TIMELINE_SCHEMA, EventType, Outcome, TriggerType

__all__ = ["TICKET_PLACEHOLDER", "TimelineRecorder", "WorkflowOutcome"]

TICKET_PLACEHOLDER: Final = "{ticket_id}"
_QUEUES: Final = [q.value for q in TaskQueue]
_TRIGGERS: Final = [t.value for t in TriggerType]
_EVENTS: Final = [e.value for e in EventType]
_PRIORITIES: Final = [p.value for p in Priority]
_NAN: Final = float("nan")
# end and status are set when a workflow ends: grown a block at a time, not appended per start
_BLOCK: Final = 4096
_NAN_BLOCK: Final = array("d", [_NAN]) * _BLOCK
_RUNNING_BLOCK: Final = array("b", [0]) * _BLOCK
# event code, step, detail, attempt, outcome, actor
_TextKey = tuple[int, str | None, str | None, int | None, Outcome | None, str | None]


class WorkflowOutcome(IntEnum):
    """How a simulated workflow ended (RUNNING while it has not)."""

    RUNNING = 0
    COMPLETED = 1
    FAILED = 2
    CANCELLED = 3


class TimelineRecorder:
    """Columns of timeline events and per-workflow facts for one run."""

    def __init__(self, *, plans: Sequence[str], categories: Sequence[str], events: bool) -> None:
        self.plans = list(plans)
        self.categories = list(categories)
        self.record_events = events
        self._texts: dict[_TextKey, int] = {}
        self.text_event: list[int] = []
        self.text_step: list[str | None] = []
        self.text_detail: list[str | None] = []
        self.text_attempt: list[int | None] = []
        self.text_outcome: list[str | None] = []
        self.text_actor: list[str | None] = []
        self.ev_key = array("q")  # workflow index << 20 | text code
        self.ev_t = array("d")
        self.wf_meta = array(
            "q"
        )  # plan | queue << 16 | trigger << 24 | priority << 32 | category << 40
        self.wf_ticket = array("i")
        self.wf_start = array("d")
        self.wf_end = array("d")
        self.wf_status = array("b")
        self.wip = 0
        self.wip_area = 0.0
        self._wip_last = 0.0
        self._key_append = self.ev_key.append
        self._meta_append = self.wf_meta.append
        self._ticket_append = self.wf_ticket.append
        self._start_append = self.wf_start.append
        self._t_append = self.ev_t.append
        if not events:
            self.event = self._skip  # type: ignore[method-assign]

    # -- recording ------------------------------------------------------------------------

    def text(
        self,
        event: EventType,
        step: str | None = None,
        detail: str | None = None,
        *,
        attempt: int | None = None,
        outcome: Outcome | None = None,
        actor: str | None = None,
    ) -> int:
        """The code of an event's fixed columns (event, step, detail and the structured fields),
        interned on first use."""
        key = (_EVENTS.index(event.value), step, detail, attempt, outcome, actor)
        if len(self.text_event) >= 1 << 20:
            raise OverflowError("too many distinct timeline texts")
        code = self._texts.get(key)
        if code is None:
            code = self._texts[key] = len(self.text_event)
            self.text_event.append(key[0])
            self.text_step.append(step)
            self.text_detail.append(detail)
            self.text_attempt.append(attempt)
            self.text_outcome.append(outcome.value if outcome is not None else None)
            self.text_actor.append(actor)
        return code

    @staticmethod
    def meta(*, plan: int, queue: int, trigger: int, priority: int = 0, category: int = 0) -> int:
        """Pack a workflow's small codes into one integer (see :meth:`workflow_arrays`)."""
        return plan | queue << 16 | trigger << 24 | priority << 32 | category << 40

    def start(self, meta: int, ticket: int, now: float) -> int:
        """Register a workflow that starts now (``meta`` from :meth:`meta`); returns its index.

        Also keeps the number of workflows in progress and its time integral (work in progress
        for Little's law).
        """
        self.wip_area += self.wip * (now - self._wip_last)
        self._wip_last = now
        self.wip += 1
        wf = len(self.wf_start)
        self._meta_append(meta)
        self._ticket_append(ticket)
        self._start_append(now)
        if wf == len(self.wf_end):
            self.wf_end.extend(_NAN_BLOCK)
            self.wf_status.extend(_RUNNING_BLOCK)
        return wf

    def event(self, wf: int, code: int, now: float) -> None:
        """Record one timeline event of workflow ``wf`` (replaced by a no-op when not recording)."""
        self._key_append(wf << 20 | code)
        self._t_append(now)

    def _skip(self, wf: int, code: int, now: float) -> None:
        return None

    def end(self, wf: int, outcome: WorkflowOutcome, now: float) -> None:
        """Mark a workflow as ended."""
        self.wip_area += self.wip * (now - self._wip_last)
        self._wip_last = now
        self.wip -= 1
        self.wf_end[wf] = now
        self.wf_status[wf] = int(outcome)

    def wip_integral(self, now: float) -> float:
        """Workflow-seconds spent in the system up to ``now``."""
        return self.wip_area + self.wip * (now - self._wip_last)

    # -- reading --------------------------------------------------------------------------

    @property
    def n_events(self) -> int:
        """Events recorded."""
        return len(self.ev_t)

    @property
    def n_workflows(self) -> int:
        """Workflows started."""
        return len(self.wf_start)

    def workflow_arrays(self) -> dict[str, np.ndarray]:
        """Per-workflow columns as numpy arrays (no copies)."""
        meta = np.frombuffer(self.wf_meta, dtype=np.int64)
        return {
            "plan": (meta & 0xFFFF).astype(np.int16),
            "queue": (meta >> 16 & 0xFF).astype(np.int8),
            "trigger": (meta >> 24 & 0xFF).astype(np.int8),
            "ticket": np.frombuffer(self.wf_ticket, dtype=np.int32),
            "priority": (meta >> 32 & 0xFF).astype(np.int8),
            "category": (meta >> 40 & 0xFFFF).astype(np.int16),
            "start": np.frombuffer(self.wf_start, dtype=np.float64),
            "end": np.frombuffer(self.wf_end, dtype=np.float64)[: len(self.wf_start)],
            "status": np.frombuffer(self.wf_status, dtype=np.int8)[: len(self.wf_start)],
        }

    def workflows_frame(self, *, origin: datetime, since_s: float = 0.0) -> pl.DataFrame:
        """One row per workflow started at or after ``since_s``: ids, attributes, times, status."""
        a = self.workflow_arrays()
        idx = np.flatnonzero(a["start"] >= since_s).astype(np.int32)
        origin_us = int(origin.timestamp() * 1_000_000)
        start = a["start"][idx]
        end = a["end"][idx]

        def stamp(seconds: np.ndarray) -> pl.Series:
            us = np.where(np.isnan(seconds), 0, np.round(seconds * 1e6)).astype(np.int64)
            s = pl.Series(us + origin_us).cast(pl.Datetime("us", "UTC"))
            mask = pl.Series(np.isnan(seconds))
            return s.zip_with(~mask, pl.Series([None], dtype=pl.Datetime("us", "UTC")))

        statuses = ["running", "completed", "failed", "cancelled"]
        frame = pl.DataFrame(
            {
                "wf": idx,
                "workflow_name": _lookup(self.plans, a["plan"][idx], pl.String()),
                "task_queue": _lookup(_QUEUES, a["queue"][idx], pl.Enum(_QUEUES)),
                "trigger_type": _lookup(_TRIGGERS, a["trigger"][idx], pl.Enum(_TRIGGERS)),
                "priority": _lookup(_PRIORITIES, a["priority"][idx], pl.Enum(_PRIORITIES)),
                "category": _lookup(self.categories, a["category"][idx], pl.String()),
                "ticket": a["ticket"][idx],
                "started_s": start,
                "ended_s": end,
                "started_at": stamp(start),
                "ended_at": stamp(end),
                "status": _lookup(statuses, a["status"][idx], pl.Enum(statuses)),
            }
        )
        return frame.with_columns(
            workflow_id=_workflow_id(pl.col("wf")),
            ticket_id=pl.format("TKT-{}", pl.col("ticket")),
            cycle_time_s=pl.when(pl.col("ended_s").is_nan())
            .then(None)
            .otherwise(pl.col("ended_s") - pl.col("started_s")),
        ).drop("wf", "ticket")

    def events_frame(self, *, origin: datetime, since_s: float = 0.0) -> pl.DataFrame:
        """Events of workflows started at or after ``since_s``, with :data:`TIMELINE_SCHEMA`."""
        key = np.frombuffer(self.ev_key, dtype=np.int64)
        wf = (key >> 20).astype(np.int32)
        text = (key & 0xFFFFF).astype(np.int32)
        t = np.frombuffer(self.ev_t, dtype=np.float64)
        a = self.workflow_arrays()
        if since_s > 0:
            keep = a["start"][wf] >= since_s
            wf, text, t = wf[keep], text[keep], t[keep]
        origin_us = int(origin.timestamp() * 1_000_000)
        templated = np.array(
            [d is not None and d.endswith(TICKET_PLACEHOLDER) for d in self.text_detail] or [False]
        )
        details = [
            d[: -len(TICKET_PLACEHOLDER)] if d is not None and d.endswith(TICKET_PLACEHOLDER) else d
            for d in self.text_detail
        ]
        frame = pl.DataFrame(
            {
                "wf": wf,
                "workflow_name": _lookup(self.plans, a["plan"][wf], pl.String()),
                "task_queue": _lookup(_QUEUES, a["queue"][wf], pl.Enum(_QUEUES)),
                "trigger_type": _lookup(_TRIGGERS, a["trigger"][wf], pl.Enum(_TRIGGERS)),
                "event": _lookup(
                    _EVENTS,
                    np.asarray(self.text_event or [0], dtype=np.int8)[text],
                    pl.Enum(_EVENTS),
                ),
                "timestamp": pl.Series(np.round(t * 1e6).astype(np.int64) + origin_us).cast(
                    pl.Datetime("us", "UTC")
                ),
                "detail": _lookup(details or [None], text, pl.String()),
                "step": _lookup(self.text_step or [None], text, pl.String()),
                "attempt": pl.Series(self.text_attempt or [None], dtype=pl.Int32()).gather(
                    pl.Series(text.astype(np.int64, copy=False))
                ),
                "outcome": _lookup(self.text_outcome or [None], text, pl.String()),
                "actor": _lookup(self.text_actor or [None], text, pl.String()),
                "templated": templated[text],
                "ticket": a["ticket"][wf],
            }
        )
        return frame.select(
            workflow_id=_workflow_id(pl.col("wf")),
            workflow_name="workflow_name",
            task_queue="task_queue",
            trigger_type="trigger_type",
            event="event",
            timestamp="timestamp",
            detail=pl.when(pl.col("templated"))
            .then(pl.concat_str(pl.col("detail"), pl.format("TKT-{}", pl.col("ticket"))))
            .otherwise(pl.col("detail")),
            step="step",
            attempt="attempt",
            outcome="outcome",
            actor="actor",
        ).cast(dict(TIMELINE_SCHEMA))  # type: ignore[arg-type]


def _workflow_id(index: pl.Expr) -> pl.Expr:
    return pl.format("wf_sim{}", index.cast(pl.String).str.zfill(8))


def _lookup(table: Sequence[str | None], codes: np.ndarray, dtype: pl.DataType) -> pl.Series:
    """Map integer codes to values of ``table`` with a vectorised gather."""
    values = pl.Series(list(table), dtype=pl.String())
    out = values.gather(pl.Series(codes.astype(np.int64, copy=False)))
    return out.cast(dtype)
