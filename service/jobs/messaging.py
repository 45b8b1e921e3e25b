"""The email and notification queues.

email: one message over SMTP to ``settings.smtp_host`` (plain, STARTTLS or implicit TLS, with a
login when configured); the job id is the Message-ID, so a receiving system can drop a duplicate
sent by a retried job. notification: stored once per job
(visible on its ticket) and POSTed on to ``settings.notification_webhook_url`` when set.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from typing import Any

from bullmq import Job, UnrecoverableError

from service.jobs.signing import destination_secret, signed_headers
from service.settings import Settings
from service.state import Resources
from service.store.notifications import add_notification, mark_delivered
from service.store.tickets import get_ticket

__all__ = ["SENDER", "process_email", "process_notification", "send_message"]

SENDER = "protocol@localhost"
_SMTP_TIMEOUT_S = 30


async def _ticket(resources: Resources, ticket_id: Any) -> dict[str, Any]:
    if not isinstance(ticket_id, str):
        return {}
    async with resources.sessionmaker() as session:
        return await get_ticket(session, ticket_id=ticket_id) or {}


def send_message(settings: Settings, host: str, message: EmailMessage) -> None:
    """One message through the relay: plain, upgraded with STARTTLS or over implicit TLS, with a
    login when one is configured. A refusal that a retry cannot mend (a bad login, a relay
    without STARTTLS, a certificate that does not verify) ends the job."""
    context = ssl.create_default_context(
        cafile=str(settings.smtp_ca_file) if settings.smtp_ca_file else None
    )
    port = settings.smtp_port
    try:
        smtp = (
            smtplib.SMTP_SSL(host, port, timeout=_SMTP_TIMEOUT_S, context=context)
            if settings.smtp_security == "ssl"
            else smtplib.SMTP(host, port, timeout=_SMTP_TIMEOUT_S)
        )
        with smtp:
            if settings.smtp_security == "starttls":
                smtp.starttls(context=context)
            if settings.smtp_username is not None and settings.smtp_password is not None:
                smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            smtp.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        raise UnrecoverableError(f"email: the relay refused the login ({exc.smtp_code})") from None
    except smtplib.SMTPNotSupportedError as exc:
        raise UnrecoverableError(f"email: the relay does not support {exc}") from None
    except ssl.SSLCertVerificationError as exc:
        raise UnrecoverableError(f"email: the relay's certificate: {exc.verify_message}") from None


async def process_email(resources: Resources, job: Job) -> dict[str, Any]:
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
    await asyncio.to_thread(send_message, settings, settings.smtp_host, message)
    return {"sent_to": str(to), "message_id": message["Message-ID"]}


async def process_notification(resources: Resources, job: Job) -> dict[str, Any]:
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
