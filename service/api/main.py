"""The API's router: includes one router per resource, nothing else."""

from __future__ import annotations

from fastapi import APIRouter

from service.api import definitions, workflows

__all__ = ["api_router"]

api_router = APIRouter(prefix="/v1")
api_router.include_router(workflows.router)
api_router.include_router(definitions.router)

# automation rules, their webhooks and events, tickets and background jobs
from service.api import events, jobs, rules, tickets, webhooks  # noqa: E402

api_router.include_router(rules.router)
api_router.include_router(webhooks.router)
api_router.include_router(events.router)
api_router.include_router(tickets.router)
api_router.include_router(jobs.router)
