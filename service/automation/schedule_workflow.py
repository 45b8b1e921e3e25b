"""The Temporal side of scheduled rules: the workflow a rule's Schedule starts, and its activity.

The workflow is deterministic and does nothing but run one activity, ``run_scheduled_rule``,
which evaluates the rule over the tickets (see ``service.automation.scheduled``). The worker
registers :func:`workflows` and :func:`activities` on the ``itsm-workflows`` task queue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

if TYPE_CHECKING:
    from service.state import Resources

__all__ = [
    "RUN_ACTIVITY",
    "ScheduledRuleInput",
    "ScheduledRuleResult",
    "ScheduledRuleRun",
    "activities",
    "workflows",
]

RUN_ACTIVITY = "run_scheduled_rule"


@dataclass
class ScheduledRuleInput:
    """Which rule a scheduled run evaluates."""

    rule_id: str


@dataclass
class ScheduledRuleResult:
    """What one run did."""

    rule_id: str
    skipped: bool = False
    matched: int = 0
    fired: int = 0


@workflow.defn(name="ScheduledRuleRun")
class ScheduledRuleRun:
    """One run of a scheduled automation rule (started by the rule's Temporal Schedule)."""

    @workflow.run
    async def run(self, inp: ScheduledRuleInput) -> ScheduledRuleResult:
        """Evaluate the rule once, through the activity."""
        result: ScheduledRuleResult = await workflow.execute_activity(
            RUN_ACTIVITY,
            inp,
            result_type=ScheduledRuleResult,
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(seconds=30),
                maximum_attempts=5,
            ),
        )
        workflow.logger.info(
            "scheduled rule %s: %s matched, %s fired", inp.rule_id, result.matched, result.fired
        )
        return result


def workflows() -> list[type]:
    """The workflow classes of automation, for the worker of ``itsm-workflows``."""
    return [ScheduledRuleRun]


def activities(resources: Resources) -> list[Callable[..., Any]]:
    """The activities of automation bound to a worker's resources."""

    @activity.defn(name=RUN_ACTIVITY)
    async def run_scheduled_rule(inp: ScheduledRuleInput) -> ScheduledRuleResult:
        """Evaluate the scheduled rule over the tickets once (retried by Temporal)."""
        from service.automation.context import AutomationContext
        from service.automation.scheduled import run_scheduled_rule as run

        ctx = AutomationContext.of(resources)
        final = activity.info().attempt >= 5
        summary = await run(ctx, rule_id=inp.rule_id, final=final)
        return ScheduledRuleResult(
            rule_id=inp.rule_id,
            skipped=bool(summary["skipped"]),
            matched=int(summary["matched"]),
            fired=int(summary["fired"]),
        )

    return [run_scheduled_rule]
