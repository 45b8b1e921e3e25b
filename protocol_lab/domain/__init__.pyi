"""Types of protocol_lab.domain's public names: the one list they are loaded from, lazily."""

from .catalog import (
    ActivityKind as ActivityKind,
    ActivityStep as ActivityStep,
    Catalog as Catalog,
    Compensation as Compensation,
    OnTimeout as OnTimeout,
    RetryPolicy as RetryPolicy,
    SignalStep as SignalStep,
    Step as Step,
    WorkflowPlan as WorkflowPlan,
    load_catalog as load_catalog,
)
from .durations import (
    DurationModel as DurationModel,
    Empirical as Empirical,
    Exponential as Exponential,
    Fixed as Fixed,
    Gamma as Gamma,
    LogNormal as LogNormal,
)
from .errors import (
    CatalogError as CatalogError,
    ProtocolLabError as ProtocolLabError,
    RuleCycleError as RuleCycleError,
    RuleError as RuleError,
    ScenarioError as ScenarioError,
    SlaConfigError as SlaConfigError,
    TimelineSchemaError as TimelineSchemaError,
)
from .paths import (
    DATA_DIR as DATA_DIR,
)
from .queues import (
    JOB_QUEUES as JOB_QUEUES,
    TASK_QUEUES as TASK_QUEUES,
    JobQueue as JobQueue,
    JobQueueSpec as JobQueueSpec,
    TaskQueue as TaskQueue,
    TaskQueueSpec as TaskQueueSpec,
)
from .rule_cycles import (
    check_no_cycles as check_no_cycles,
    find_update_cycles as find_update_cycles,
)
from .rules import (
    OPERATORS as OPERATORS,
    Action as Action,
    ActionType as ActionType,
    ConditionCheck as ConditionCheck,
    MatchResult as MatchResult,
    Rule as Rule,
    SendNotificationAction as SendNotificationAction,
    StartWorkflowAction as StartWorkflowAction,
    Trigger as Trigger,
    UpdateFieldAction as UpdateFieldAction,
    load_rules as load_rules,
    match_conditions as match_conditions,
    parse_action as parse_action,
    validate_conditions as validate_conditions,
)
from .sla import (
    BusinessCalendar as BusinessCalendar,
    SlaConfig as SlaConfig,
    SlaTarget as SlaTarget,
    load_sla_config as load_sla_config,
)
from .tickets import (
    DERIVED_FIELDS as DERIVED_FIELDS,
    TICKET_FIELDS as TICKET_FIELDS,
    WRITABLE_FIELDS as WRITABLE_FIELDS,
    Priority as Priority,
    TicketStatus as TicketStatus,
)
from .timeline import (
    OPTIONAL_COLUMNS as OPTIONAL_COLUMNS,
    TERMINAL_EVENTS as TERMINAL_EVENTS,
    TIMELINE_COLUMNS as TIMELINE_COLUMNS,
    TIMELINE_SCHEMA as TIMELINE_SCHEMA,
    EventType as EventType,
    Outcome as Outcome,
    TimelineEvent as TimelineEvent,
    TriggerType as TriggerType,
    WorkflowStatus as WorkflowStatus,
    events_to_frame as events_to_frame,
    validate_frame as validate_frame,
    validate_record as validate_record,
    wire_events as wire_events,
)
