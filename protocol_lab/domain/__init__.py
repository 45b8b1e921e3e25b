"""The shared model of protocol-lab: timeline schema, workflow catalog, rules, queues, SLA targets.

Imported by the service, the analytics and the simulator alike; imports none of fastapi or
temporalio.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from protocol_lab.domain.catalog import (
        ActivityKind,
        ActivityStep,
        Catalog,
        Compensation,
        OnTimeout,
        RetryPolicy,
        SignalStep,
        Step,
        WorkflowPlan,
        load_catalog,
    )
    from protocol_lab.domain.durations import (
        DurationModel,
        Empirical,
        Exponential,
        Fixed,
        Gamma,
        LogNormal,
    )
    from protocol_lab.domain.errors import (
        CatalogError,
        ProtocolLabError,
        RuleCycleError,
        RuleError,
        ScenarioError,
        SlaConfigError,
        TimelineSchemaError,
    )
    from protocol_lab.domain.paths import DATA_DIR
    from protocol_lab.domain.queues import (
        JOB_QUEUES,
        TASK_QUEUES,
        JobQueue,
        JobQueueSpec,
        TaskQueue,
        TaskQueueSpec,
    )
    from protocol_lab.domain.rule_cycles import check_no_cycles, find_update_cycles
    from protocol_lab.domain.rules import (
        OPERATORS,
        Action,
        ActionType,
        ConditionCheck,
        MatchResult,
        Rule,
        SendNotificationAction,
        StartWorkflowAction,
        Trigger,
        UpdateFieldAction,
        load_rules,
        match_conditions,
        parse_action,
        validate_conditions,
    )
    from protocol_lab.domain.sla import BusinessCalendar, SlaConfig, SlaTarget, load_sla_config
    from protocol_lab.domain.tickets import (
        DERIVED_FIELDS,
        TICKET_FIELDS,
        WRITABLE_FIELDS,
        Priority,
        TicketStatus,
    )
    from protocol_lab.domain.timeline import (
        OPTIONAL_COLUMNS,
        TERMINAL_EVENTS,
        TIMELINE_COLUMNS,
        TIMELINE_SCHEMA,
        EventType,
        Outcome,
        TimelineEvent,
        TriggerType,
        WorkflowStatus,
        events_to_frame,
        validate_frame,
        validate_record,
        wire_events,
    )

# Submodules load on first use (PEP 562), so importing the timeline schema does not pay for
# pydantic and YAML, which only the catalog, rules and SLA models need.
_EXPORTS: dict[str, str] = {
    "ActivityKind": "catalog",
    "ActivityStep": "catalog",
    "Catalog": "catalog",
    "Compensation": "catalog",
    "OnTimeout": "catalog",
    "RetryPolicy": "catalog",
    "SignalStep": "catalog",
    "Step": "catalog",
    "WorkflowPlan": "catalog",
    "load_catalog": "catalog",
    "DurationModel": "durations",
    "Empirical": "durations",
    "Exponential": "durations",
    "Fixed": "durations",
    "Gamma": "durations",
    "LogNormal": "durations",
    "CatalogError": "errors",
    "ProtocolLabError": "errors",
    "RuleCycleError": "errors",
    "RuleError": "errors",
    "ScenarioError": "errors",
    "SlaConfigError": "errors",
    "TimelineSchemaError": "errors",
    "DATA_DIR": "paths",
    "JOB_QUEUES": "queues",
    "TASK_QUEUES": "queues",
    "JobQueue": "queues",
    "JobQueueSpec": "queues",
    "TaskQueue": "queues",
    "TaskQueueSpec": "queues",
    "OPERATORS": "rules",
    "Action": "rules",
    "ActionType": "rules",
    "ConditionCheck": "rules",
    "MatchResult": "rules",
    "Rule": "rules",
    "SendNotificationAction": "rules",
    "StartWorkflowAction": "rules",
    "Trigger": "rules",
    "UpdateFieldAction": "rules",
    "check_no_cycles": "rule_cycles",
    "find_update_cycles": "rule_cycles",
    "load_rules": "rules",
    "match_conditions": "rules",
    "parse_action": "rules",
    "validate_conditions": "rules",
    "BusinessCalendar": "sla",
    "SlaConfig": "sla",
    "SlaTarget": "sla",
    "load_sla_config": "sla",
    "DERIVED_FIELDS": "tickets",
    "TICKET_FIELDS": "tickets",
    "WRITABLE_FIELDS": "tickets",
    "Priority": "tickets",
    "TicketStatus": "tickets",
    "OPTIONAL_COLUMNS": "timeline",
    "TERMINAL_EVENTS": "timeline",
    "TIMELINE_COLUMNS": "timeline",
    "TIMELINE_SCHEMA": "timeline",
    "EventType": "timeline",
    "Outcome": "timeline",
    "TimelineEvent": "timeline",
    "TriggerType": "timeline",
    "WorkflowStatus": "timeline",
    "events_to_frame": "timeline",
    "validate_frame": "timeline",
    "validate_record": "timeline",
    "wire_events": "timeline",
}

__all__ = [
    "DATA_DIR",
    "DERIVED_FIELDS",
    "JOB_QUEUES",
    "OPERATORS",
    "OPTIONAL_COLUMNS",
    "TASK_QUEUES",
    "TERMINAL_EVENTS",
    "TICKET_FIELDS",
    "TIMELINE_COLUMNS",
    "TIMELINE_SCHEMA",
    "WRITABLE_FIELDS",
    "Action",
    "ActionType",
    "ActivityKind",
    "ActivityStep",
    "BusinessCalendar",
    "Catalog",
    "CatalogError",
    "Compensation",
    "ConditionCheck",
    "DurationModel",
    "Empirical",
    "EventType",
    "Exponential",
    "Fixed",
    "Gamma",
    "JobQueue",
    "JobQueueSpec",
    "LogNormal",
    "MatchResult",
    "OnTimeout",
    "Outcome",
    "Priority",
    "ProtocolLabError",
    "RetryPolicy",
    "Rule",
    "RuleCycleError",
    "RuleError",
    "ScenarioError",
    "SendNotificationAction",
    "SignalStep",
    "SlaConfig",
    "SlaConfigError",
    "SlaTarget",
    "StartWorkflowAction",
    "Step",
    "TaskQueue",
    "TaskQueueSpec",
    "TicketStatus",
    "TimelineEvent",
    "TimelineSchemaError",
    "Trigger",
    "TriggerType",
    "UpdateFieldAction",
    "WorkflowPlan",
    "WorkflowStatus",
    "check_no_cycles",
    "events_to_frame",
    "find_update_cycles",
    "load_catalog",
    "load_rules",
    "load_sla_config",
    "match_conditions",
    "parse_action",
    "validate_conditions",
    "validate_frame",
    "validate_record",
    "wire_events",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
