"""The email and notification queues.

email: one message over SMTP to ``settings.smtp_host``; the job id is the Message-ID, so a
receiving system can drop a duplicate sent by a retried job. notification: stored once per job
(visible on its ticket) and POSTed on to ``settings.notification_webhook_url`` when set.
"""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from typing import Any

from bullmq import Job, UnrecoverableError

from service.jobs.signing import destination_secret, signed_headers
from service.store.notifications import add_notification, mark_delivered
from service.store.tickets import get_ticket
from service.temporal.resources import WorkerResources

__all__ = ["SENDER", "process_email", "process_notification"]

SENDER = "protocol@localhost"


async def _ticket(resources: WorkerResources, ticket_id: Any) -> dict[str, Any]:
    if not isinstance(ticket_id, str):
        return {}
    async with resources.sessionmaker() as session:
        return await get_ticket(session, ticket_id=ticket_id) or {}


def _send(host: str, port: int, message: EmailMessage) -> None:
    with smtplib.SMTP(host, port, timeout=30) as smtp:
        smtp.send_message(message)


async def process_email(resources: WorkerResources, job: Job) -> dict[str, Any]:
    """Send one email job: data ``to``, ``subject``, ``body`` (or ``message``)."""
    data = job.data or {}
    to = data.get("to") or data.get("recipient")
    if not to or "@" not in str(to):
        # Jobs from workflow steps name a ticket: write to its requester.
        to = (await _ticket(resources, data.get("ticket_id"))).get("requester") or to
    if not to or "@" not in str(to):
        raise UnrecoverableError(f"email job {job.id}: no valid recipient address ({to!r})")
    settings = resources.settings
    if settings.smtp_host is None:
        raise UnrecoverableError("email queue: SMTP_HOST is not configured")
    message = EmailMessage()
    message["From"] = data.get("from") or SENDER
    message["To"] = str(to)
    default_subject = f"[{data.get('ticket_id') or 'Protocol'}] {job.name.replace('_', ' ')}"
    message["Subject"] = str(data.get("subject") or default_subject)
    message["Message-ID"] = f"<{job.id}@protocol-lab>"
    if data.get("ticket_id"):
        message["X-Protocol-Ticket"] = str(data["ticket_id"])
    message.set_content(str(data.get("body") or data.get("message") or default_subject))
    await asyncio.to_thread(_send, settings.smtp_host, settings.smtp_port, message)
    return {"sent_to": str(to), "message_id": message["Message-ID"]}


async def process_notification(resources: WorkerResources, job: Job) -> dict[str, Any]:
    """Store a notification on its ticket and send it on to the notification webhook if set."""
    data = job.data or {}
    ticket_id = data.get("ticket_id")
    recipient = str(data.get("recipient") or "")
    if not recipient:
        # Jobs from workflow steps name a ticket: notify its assignee, else its requester.
        ticket = await _ticket(resources, ticket_id)
        recipient = str(ticket.get("assignee") or ticket.get("requester") or "")
    message = str(data.get("message") or f"{job.name.replace('_', ' ')} on {ticket_id}")
    if not recipient:
        raise UnrecoverableError(f"notification job {job.id}: no recipient")
    job_id = str(job.id)
    async with resources.sessionmaker() as session:
        await add_notification(
            session,
            job_id=job_id,
            ticket_id=ticket_id,
            recipient=recipient,
            message=message,
            subject=data.get("subject"),
            rule_id=data.get("rule_id"),
        )
    url = resources.settings.notification_webhook_url
    if url:
        body = {
            "id": job_id,
            "ticket_id": ticket_id,
            "recipient": recipient,
            "subject": data.get("subject"),
            "message": message,
        }
        content, headers = signed_headers(body, secret=destination_secret(resources.settings, url))
        headers["Idempotency-Key"] = job_id
        response = await resources.http.post(url, content=content, headers=headers)
        response.raise_for_status()
        async with resources.sessionmaker() as session:
            await mark_delivered(session, job_id=job_id, url=url)
    return {"stored": job_id, "forwarded_to": url}
