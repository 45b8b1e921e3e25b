"""Types of protocol_lab.analytics' public names: the one list they are loaded from, lazily."""

from ._frames import (
    ENGINE as ENGINE,
)
from .business_columns import (
    business_clock as business_clock,
    business_seconds as business_seconds,
)
from .conformance import (
    Conformance as Conformance,
    conformance as conformance,
)
from .export import (
    pm4py_frame as pm4py_frame,
    to_pm4py as to_pm4py,
    write_ocel2_json as write_ocel2_json,
    write_xes as write_xes,
)
from .flow import (
    arrival_stats as arrival_stats,
    arrivals_by_hour as arrivals_by_hour,
    cumulative_flow as cumulative_flow,
    littles_law as littles_law,
    throughput as throughput,
)
from .itsm import (
    handover_matrix as handover_matrix,
    handovers as handovers,
    reassignment_summary as reassignment_summary,
    reassignments as reassignments,
    reopen_rate as reopen_rate,
    reopens as reopens,
    sla_agreement as sla_agreement,
    time_in_state as time_in_state,
    workload as workload,
)
from .log_mapping import (
    LogMapping as LogMapping,
)
from .outcomes import (
    failure_rates as failure_rates,
    failure_reasons as failure_reasons,
    variants as variants,
)
from .process_map import (
    ProcessMap as ProcessMap,
    draw_process_map as draw_process_map,
    process_map as process_map,
)
from .sample import (
    SAMPLE_PATH as SAMPLE_PATH,
)
from .sla import (
    SLA_STATES as SLA_STATES,
    SlaSummary as SlaSummary,
    cycle_times as cycle_times,
    percentiles as percentiles,
    sla_status as sla_status,
    sla_summary as sla_summary,
)
from .states import (
    DEFAULT_PAUSING as DEFAULT_PAUSING,
    DEFAULT_STOPPING as DEFAULT_STOPPING,
    step_intervals as step_intervals,
)
from .steps import (
    activity_label as activity_label,
    bottlenecks as bottlenecks,
    directly_follows as directly_follows,
    step_durations as step_durations,
)
from .timelines import (
    OUTCOMES as OUTCOMES,
    REJECTED_SCHEMA as REJECTED_SCHEMA,
    WORKFLOW_SCHEMA as WORKFLOW_SCHEMA,
    OnError as OnError,
    PlotNamespace as PlotNamespace,
    Timelines as Timelines,
)
from .vocabulary import (
    FOREIGN_SCHEMA as FOREIGN_SCHEMA,
    Vocabulary as Vocabulary,
)
