"""The detail texts of a timeline: one function per situation, the same for service and simulator.

A timeline row's ``detail`` is for people; what an analysis needs to read back travels in the
structured fields (``step``, ``attempt``, ``outcome``, ``actor``: see
:mod:`protocol_lab.domain.timeline`). The service's workflow and its history mapper
(:mod:`protocol_lab.domain.history`) and the simulator (:mod:`protocol_lab.sim.plans`) build
every text here, so the two halves of the closed loop write the same words for the same
situation; where the API page shows a text ("Triggered by ticket TKT-4829", "Manually
initiated", "Awaiting manager approval", "Cancelled by user") that wording is the one used.
Nothing outside this module parses a detail.
"""

from __future__ import annotations

from typing import Any, Final

from protocol_lab.domain.catalog import ActivityStep, Compensation, OnTimeout, SignalStep

__all__ = [
    "CANCELLED_BY_USER",
    "PAUSED_BY_USER",
    "RESUMED_BY_USER",
    "WORKFLOW_COMPLETED",
    "activity_failed",
    "activity_timed_out",
    "compensation",
    "emulated_failure",
    "signal_received",
    "signal_rejected",
    "signal_timed_out",
    "step_done",
    "step_running",
    "ticket_in",
    "workflow_started",
]

WORKFLOW_COMPLETED: Final = "Workflow completed"
CANCELLED_BY_USER: Final = "Cancelled by user"
PAUSED_BY_USER: Final = "Paused by user"
RESUMED_BY_USER: Final = "Resumed by user"


def workflow_started(trigger_type: str, input: dict[str, Any] | None = None) -> str:
    """``workflow_started``: how the workflow was initiated, naming its ticket when it has one."""
    ticket = (input or {}).get("ticket_id")
    if trigger_type == "manual":
        return "Manually initiated"
    if trigger_type == "scheduled":
        return "Started on schedule"
    if isinstance(ticket, str) and ticket:
        return f"Triggered by ticket {ticket}"
    return "Triggered by event" if trigger_type == "event_based" else "Automatically triggered"


def ticket_in(started: str | None) -> str | None:
    """The ticket a ``workflow_started`` detail names (the reading of :func:`workflow_started`,
    for API timelines whose workflow object carries no ticket id)."""
    prefix = "Triggered by ticket "
    if started is None or not started.startswith(prefix):
        return None
    return started[len(prefix) :].strip() or None


def step_running(step: ActivityStep | SignalStep) -> str:
    """``activity_started`` of a step (an activity running, or a signal being awaited)."""
    return step.detail


def step_done(step: ActivityStep | SignalStep) -> str:
    """``activity_completed`` of an activity step, ``signal_received`` of a signal step."""
    return step.done


def signal_received(step: SignalStep, decision: str | None = None) -> str:
    """``signal_received``: the signal step's completion text, or for a rejection (its
    ``outcome`` is ``rejected``) the signal and the decision it carried."""
    if decision is not None and decision in step.reject_values:
        return f"{step.signal}: {decision}"
    return step.done


def signal_rejected(step: SignalStep, decision: str, actor: str | None) -> str:
    """``workflow_failed`` after a signal carried a decision among the step's reject values."""
    by = f" by {actor}" if actor else ""
    return f"{step.signal}: {decision}{by}"


def signal_timed_out(step: SignalStep) -> str:
    """The event that ends a signal wait without its signal, by the step's ``on_timeout``:
    ``activity_completed`` (continue), ``workflow_failed`` (fail) or ``workflow_cancelled``
    (cancel)."""
    if step.on_timeout is OnTimeout.CONTINUE:
        return f"{step.detail}: no response in time, continued"
    if step.on_timeout is OnTimeout.CANCEL:
        return f"Cancelled: {step.detail} timed out"
    return f"{step.detail} timed out"


def activity_failed(step_detail: str, cause: str) -> str:
    """``activity_failed`` (and the ``workflow_failed`` it causes): the step failed for ``cause``
    on its last attempt."""
    return f"{step_detail} failed: {cause}"


def activity_timed_out(step_detail: str) -> str:
    """``activity_failed`` (and the ``workflow_failed`` it causes) of a step that outlived its
    timeout on its last attempt."""
    return f"{step_detail} timed out"


def emulated_failure(integration: str | None, activity: str) -> str:
    """The cause of a failed attempt of an emulated step (no real system behind it)."""
    return f"{integration or activity} failed (emulated)"


def compensation(comp: Compensation) -> str:
    """``compensation_started`` and ``compensation_completed`` of a step's compensation."""
    return comp.detail
