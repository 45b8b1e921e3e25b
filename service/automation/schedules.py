"""Scheduled rules on Temporal Schedules: one schedule per rule, following the rule's state.

The schedule ``rule-schedule-<rule id>`` starts ``ScheduledRuleRun`` on ``itsm-workflows``
every ``schedule_interval_s`` (default hourly), or at the times of the rule's ``schedule_cron``
(UTC; the expression's fields become Temporal calendar specs, two of them when the day of month
and the day of week are both restricted, as cron fires on either); it is paused while the rule
is disabled and deleted with the rule. :func:`reconcile_schedules` repairs any drift (a rule
saved while Temporal was unreachable) and is run by the background runner.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import timedelta
from typing import Final

from sqlalchemy import select
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from protocol_lab.domain import TaskQueue, Trigger
from protocol_lab.domain.cron import parse_cron
from service.automation.context import AutomationContext
from service.automation.schedule_workflow import ScheduledRuleInput, ScheduledRuleRun
from service.settings import Settings
from service.store.rules import RuleRow
from service.temporal.queues import temporal_queue

__all__ = [
    "DEFAULT_INTERVAL_S",
    "SCHEDULE_PREFIX",
    "cron_calendars",
    "delete_rule_schedule",
    "reconcile_schedules",
    "schedule_id",
    "sync_rule_schedule",
]

log = logging.getLogger("service.automation")

SCHEDULE_PREFIX: Final = "rule-schedule-"
DEFAULT_INTERVAL_S: Final = 3600.0


def schedule_id(rule_id: str) -> str:
    """The Temporal Schedule id of a scheduled rule."""
    return SCHEDULE_PREFIX + rule_id


def _ranges(values: tuple[int, ...]) -> list[ScheduleRange]:
    """Sorted values as the fewest contiguous ranges."""
    ranges: list[ScheduleRange] = []
    for value in values:
        if ranges and ranges[-1].end == value - 1:
            ranges[-1] = ScheduleRange(ranges[-1].start, value)
        else:
            ranges.append(ScheduleRange(value, value))
    return ranges


def cron_calendars(expression: str) -> list[ScheduleCalendarSpec]:
    """Temporal calendar specs that fire exactly when the cron expression does (UTC)."""
    fields = parse_cron(expression)
    every_day = _ranges(tuple(range(1, 32)))
    every_weekday = _ranges(tuple(range(7)))

    def calendar(days: list[ScheduleRange], weekdays: list[ScheduleRange]) -> ScheduleCalendarSpec:
        return ScheduleCalendarSpec(
            second=[ScheduleRange(0)],
            minute=_ranges(fields.minute),
            hour=_ranges(fields.hour),
            day_of_month=days,
            month=_ranges(fields.month),
            day_of_week=weekdays,
        )

    if fields.days_either:
        return [
            calendar(_ranges(fields.day_of_month), every_weekday),
            calendar(every_day, _ranges(fields.day_of_week)),
        ]
    return [calendar(_ranges(fields.day_of_month), _ranges(fields.day_of_week))]


def _spec(row: RuleRow) -> ScheduleSpec:
    if row.schedule_cron is not None:
        return ScheduleSpec(calendars=cron_calendars(row.schedule_cron))
    every = timedelta(seconds=row.schedule_interval_s or DEFAULT_INTERVAL_S)
    return ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)])


def _schedule(row: RuleRow, task_queue: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ScheduledRuleRun.run,
            ScheduledRuleInput(rule_id=row.id),
            id=f"rule-run-{row.id}",
            task_queue=task_queue,
            execution_timeout=timedelta(minutes=30),
        ),
        spec=_spec(row),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(
            paused=not row.enabled,
            note=f"automation rule {row.name!r}" + ("" if row.enabled else " (disabled)"),
        ),
    )


async def sync_rule_schedule(client: Client, *, row: RuleRow, settings: Settings) -> None:
    """Create or update the schedule of a scheduled rule (paused while disabled); its runs
    start on the rule engine's task queue of ``settings``.

    A rule that is not (or no longer) scheduled has its schedule deleted.
    """
    if row.trigger != Trigger.SCHEDULED.value:
        await delete_rule_schedule(client, rule_id=row.id)
        return
    schedule = _schedule(row, temporal_queue(settings, TaskQueue.WORKFLOWS.value))
    try:
        await client.create_schedule(schedule_id(row.id), schedule)
        return
    except ScheduleAlreadyRunningError:
        pass

    def _update(_: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=schedule)

    await client.get_schedule_handle(schedule_id(row.id)).update(_update)


async def delete_rule_schedule(client: Client, *, rule_id: str) -> None:
    """Delete a rule's schedule if there is one."""
    try:
        await client.get_schedule_handle(schedule_id(rule_id)).delete()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise


async def reconcile_schedules(ctx: AutomationContext) -> int:
    """Make the Temporal Schedules follow the stored scheduled rules; return schedules touched."""
    async with ctx.sessionmaker() as session:
        rows = list(
            (
                await session.execute(
                    select(RuleRow).where(RuleRow.trigger == Trigger.SCHEDULED.value)
                )
            ).scalars()
        )
    wanted = {row.id: row for row in rows}
    touched = 0
    existing: set[str] = set()
    async for listed in await ctx.temporal.list_schedules():
        if listed.id.startswith(SCHEDULE_PREFIX):
            existing.add(listed.id[len(SCHEDULE_PREFIX) :])
    for rule_id in existing - wanted.keys():
        if await _isolated(rule_id, delete_rule_schedule(ctx.temporal, rule_id=rule_id)):
            touched += 1
    for rule_id, row in wanted.items():
        reconciling = _reconcile_one(ctx, row, exists=rule_id in existing)
        if await _isolated(rule_id, reconciling):
            touched += 1
    return touched


async def _reconcile_one(ctx: AutomationContext, row: RuleRow, *, exists: bool) -> bool:
    client = ctx.temporal
    if exists:
        desc = await client.get_schedule_handle(schedule_id(row.id)).describe()
        if desc.schedule.state.paused == (not row.enabled):
            return False
    await sync_rule_schedule(client, row=row, settings=ctx.settings)
    return True


async def _isolated(rule_id: str, step: Awaitable[bool | None]) -> bool:
    """Run one rule's reconciliation; a failure is logged for that rule and the others go on."""
    try:
        return await step is not False
    except Exception:
        log.exception("schedule of rule %s not reconciled", rule_id)
        return False
