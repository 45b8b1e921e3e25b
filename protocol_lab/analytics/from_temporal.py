"""Timeline rows straight from Temporal: list executions, fetch their histories concurrently.

``temporalio`` is imported only inside these functions, so the library never needs it at
import time. Histories are mapped by the one history mapper,
:func:`protocol_lab.domain.history.build_timeline` (its docstring and docs/architecture.md give
the mapping; an activity starts at ActivityTaskStarted).

For workflows other than the service's plan, the workflow name, trigger type, priority and
ticket come from search attributes or the memo when the workflow sets them (keys compared
case-insensitively, ``WorkflowName`` or ``name``, ``TriggerType``, ``Priority``, ``TicketId``);
otherwise the name is the workflow type and the trigger type ``manual``. A plan's own input
names it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from protocol_lab.domain import TriggerType

__all__ = ["fetch_rows"]

_NAME_KEYS = ("workflowname", "workflow_name", "name")
_TRIGGER_KEYS = ("triggertype", "trigger_type")
_PRIORITY_KEYS = ("priority",)
_TICKET_KEYS = ("ticketid", "ticket_id", "ticket")


def _lookup(sources: Sequence[Mapping[Any, Any]], keys: tuple[str, ...]) -> str | None:
    for source in sources:
        lowered = {str(k).lower(): v for k, v in source.items()}
        for key in keys:
            value = lowered.get(key)
            if isinstance(value, list | tuple):
                value = value[0] if value else None
            if value is not None and value != "":
                return str(value)
    return None


async def fetch_rows(
    client: Any,
    *,
    query: str | None = None,
    concurrency: int = 16,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """List executions matching ``query`` and map their histories, ``concurrency`` at a time.

    Returns ``(rows, attributes)``: timeline rows, and one attribute dict per workflow
    (``workflow_id``, ``run_id``, ``priority``, ``ticket_id``).
    """
    from protocol_lab.domain import SignalStep, load_catalog
    from protocol_lab.domain.history import build_timeline

    signal_steps: dict[str, dict[str, str]] = {
        plan.name: {s.signal: s.id for s in plan.steps if isinstance(s, SignalStep)}
        for plan in load_catalog().values()
    }
    limit = asyncio.Semaphore(max(1, concurrency))
    executions = [execution async for execution in client.list_workflows(query)]

    async def one(execution: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        async with limit:
            try:
                memo = dict(await execution.memo())
            except Exception:  # a memo we cannot decode is simply not used
                memo = {}
            handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
            history = await handle.fetch_history()
        sources = [dict(execution.search_attributes), memo]
        trigger = _lookup(sources, _TRIGGER_KEYS)
        if trigger not in {t.value for t in TriggerType}:
            trigger = TriggerType.MANUAL.value
        name = _lookup(sources, _NAME_KEYS) or execution.workflow_type
        timeline = await build_timeline(
            execution.id,
            history.events,
            converter=client.data_converter,
            workflow_name=name,
            task_queue=execution.task_queue,
            trigger_type=trigger,
            signal_steps=signal_steps.get(name),
        )
        rows = [
            {**e.to_dict(), "timestamp": datetime.fromtimestamp(e.timestamp, tz=UTC)}
            for e in timeline.events
        ]
        attrs = {
            "workflow_id": execution.id,
            "run_id": execution.run_id,
            "priority": _lookup(sources, _PRIORITY_KEYS),
            "ticket_id": _lookup(sources, _TICKET_KEYS),
        }
        return rows, attrs

    results = await asyncio.gather(*(one(e) for e in executions))
    rows = [row for chunk, _ in results for row in chunk]
    return rows, [attrs for _, attrs in results]
