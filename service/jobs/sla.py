"""The sla-timer queue: a delayed job per new ticket that checks its priority's SLA target.

When the timer fires, a ticket that is still open past its target is breached: the breach goes
to the audit trail and a notification to the assignee (else the requester). A resolved or closed
ticket met its target. The job is enqueued with the target as its delay (see the rule engine).
"""

from __future__ import annotations

import time
from typing import Any

from bullmq import Job, UnrecoverableError

from protocol_lab.domain import JobQueue, SlaConfig, load_sla_config
from service.state import Resources
from service.store.notifications import add_audit
from service.store.tickets import get_ticket

__all__ = ["priority_target_s", "process_sla_timer"]

_CONFIG: SlaConfig | None = None


def priority_target_s(priority: str) -> float | None:
    """The SLA target of a ticket priority in seconds (None if the priority has none)."""
    global _CONFIG
    if _CONFIG is None:
        _CONFIG = load_sla_config()
    for target in _CONFIG.targets:
        if target.priority == priority:
            return target.target_seconds
    return None


async def process_sla_timer(resources: Resources, job: Job) -> dict[str, Any]:
    """Check a ticket against its priority target; record and notify a breach."""
    data = job.data or {}
    ticket_id = data.get("ticket_id")
    if not isinstance(ticket_id, str):
        raise UnrecoverableError("sla-timer job needs ticket_id")
    async with resources.sessionmaker() as session:
        ticket = await get_ticket(session, ticket_id=ticket_id)
    if ticket is None:
        return {"ticket_id": ticket_id, "state": "gone"}
    target = priority_target_s(ticket["priority"])
    if target is None:
        return {"ticket_id": ticket_id, "state": "no_target"}
    elapsed = time.time() - ticket["created_at"]
    scale = resources.settings.time_scale
    # 1 s of slack: the timer is due at the target, not a rounding error before it.
    if ticket["status"] in ("resolved", "closed"):
        state = "met"
    elif (elapsed + 1.0) * scale >= target:
        state = "breached"
    else:
        state = "within"
    async with resources.sessionmaker() as session:
        await add_audit(
            session,
            job_id=str(job.id),
            kind=f"sla_{state}",
            subject=ticket_id,
            data={"priority": ticket["priority"], "target_s": target, "elapsed_s": elapsed},
        )
    if state == "breached":
        recipient = ticket.get("assignee") or ticket.get("requester")
        if recipient:
            await resources.jobs.enqueue(
                JobQueue.NOTIFICATION,
                "sla_breached",
                {
                    "ticket_id": ticket_id,
                    "recipient": recipient,
                    "subject": f"SLA breached on {ticket_id}",
                    "message": f"{ticket_id} ({ticket['priority']}) is past its "
                    f"{target / 3600:g} h target and still {ticket['status']}.",
                },
                job_id=f"{job.id}-breach",  # one per timer, as the timer is one per ticket
            )
    return {"ticket_id": ticket_id, "state": state, "target_s": target}
