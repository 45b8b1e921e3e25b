"""The queue registry: Temporal task queues and BullMQ job queues, each with its purpose."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "JOB_QUEUES",
    "TASK_QUEUES",
    "JobQueue",
    "JobQueueSpec",
    "TaskQueue",
    "TaskQueueSpec",
]


class TaskQueue(StrEnum):
    """The five Temporal task queues that partition workflow work by service domain."""

    WORKFLOWS = "itsm-workflows"
    ACCESSORIES = "itsm-accessories"
    FLEET = "itsm-fleet"
    NETWORK = "itsm-network"
    HIGH_PRIORITY = "itsm-high-priority"


class JobQueue(StrEnum):
    """The twelve BullMQ queues for background jobs."""

    EMAIL = "email"
    NOTIFICATION = "notification"
    SYNC = "sync"
    AI_INFERENCE = "ai-inference"
    REPORT_GENERATION = "report-generation"
    WEBHOOK_DELIVERY = "webhook-delivery"
    AUDIT = "audit"
    SLA_TIMER = "sla-timer"
    ASSET_SYNC = "asset-sync"
    FLEET_SYNC = "fleet-sync"
    EXPORT = "export"
    MAINTENANCE = "maintenance"


@dataclass(frozen=True, slots=True)
class TaskQueueSpec:
    """A Temporal task queue, what it is for, and its default worker slots."""

    name: TaskQueue
    purpose: str
    default_workers: int
    default_slots: int


@dataclass(frozen=True, slots=True)
class JobQueueSpec:
    """A BullMQ queue, what it is for, its default concurrency and rate limit (jobs/second)."""

    name: JobQueue
    purpose: str
    concurrency: int
    rate_limit_per_s: float | None = None


TASK_QUEUES: dict[TaskQueue, TaskQueueSpec] = {
    spec.name: spec
    for spec in (
        TaskQueueSpec(TaskQueue.WORKFLOWS, "general ITSM workflows", 2, 100),
        TaskQueueSpec(TaskQueue.ACCESSORIES, "asset provisioning and accessories", 1, 100),
        TaskQueueSpec(TaskQueue.FLEET, "device and fleet management", 1, 100),
        TaskQueueSpec(TaskQueue.NETWORK, "network and access infrastructure", 1, 100),
        TaskQueueSpec(TaskQueue.HIGH_PRIORITY, "SLA-critical incidents and escalations", 2, 100),
    )
}

JOB_QUEUES: dict[JobQueue, JobQueueSpec] = {
    spec.name: spec
    for spec in (
        JobQueueSpec(JobQueue.EMAIL, "outbound e-mail over SMTP", 5, 10.0),
        JobQueueSpec(JobQueue.NOTIFICATION, "in-app notifications and notification webhooks", 10),
        JobQueueSpec(JobQueue.SYNC, "generic record synchronisation", 4),
        JobQueueSpec(JobQueue.AI_INFERENCE, "category and priority suggestions", 2),
        JobQueueSpec(JobQueue.REPORT_GENERATION, "SLA and throughput reports", 1),
        JobQueueSpec(JobQueue.WEBHOOK_DELIVERY, "signed outbound webhooks with backoff", 8, 20.0),
        JobQueueSpec(JobQueue.AUDIT, "append-only audit trail", 4),
        JobQueueSpec(JobQueue.SLA_TIMER, "SLA breach timers", 4),
        JobQueueSpec(JobQueue.ASSET_SYNC, "asset inventory synchronisation", 2),
        JobQueueSpec(JobQueue.FLEET_SYNC, "device fleet synchronisation", 2),
        JobQueueSpec(JobQueue.EXPORT, "data exports", 1),
        JobQueueSpec(JobQueue.MAINTENANCE, "housekeeping and retention", 1),
    )
}
