"""Workflow timelines into dataframes: loading, SLA and throughput analyses, pictures, exports.

Start with :class:`Timelines` (``Timelines.from_file``, ``from_frame``, ``from_records``,
``from_api``, ``from_temporal``, and ``from_log`` for logs other systems wrote: ServiceNow,
Jira, XES, or any CSV / Parquet / JSON lines through a :class:`LogMapping`). The analyses
are functions that take and return polars frames (lazy in, lazy out); ``Timelines`` has
collected shortcuts for notebooks::

    tl = Timelines.from_file("data/samples/timelines.parquet")
    tl.sla(by="task_queue")          # SLA table by queue
    tl.plot.cumulative_flow()        # cumulative flow diagram
    tl.bottlenecks().head(1)         # the worst bottleneck step

Collect lazy results with ``collect(engine=ENGINE)`` (the in-memory engine): these plans run
faster there than in polars' default streaming engine.
"""

from protocol_lab.analytics._frames import ENGINE
from protocol_lab.analytics.business_columns import business_clock, business_seconds
from protocol_lab.analytics.conformance import Conformance, conformance
from protocol_lab.analytics.export import pm4py_frame, to_pm4py, write_ocel2_json, write_xes
from protocol_lab.analytics.flow import (
    arrival_stats,
    arrivals_by_hour,
    cumulative_flow,
    littles_law,
    throughput,
)
from protocol_lab.analytics.itsm import (
    handover_matrix,
    handovers,
    reassignment_summary,
    reassignments,
    reopen_rate,
    reopens,
    sla_agreement,
    time_in_state,
    workload,
)
from protocol_lab.analytics.log_mapping import LogMapping
from protocol_lab.analytics.outcomes import failure_rates, failure_reasons, variants
from protocol_lab.analytics.process_map import ProcessMap, draw_process_map, process_map
from protocol_lab.analytics.sla import (
    SLA_STATES,
    SlaSummary,
    cycle_times,
    percentiles,
    sla_status,
    sla_summary,
)
from protocol_lab.analytics.states import DEFAULT_PAUSING, DEFAULT_STOPPING, step_intervals
from protocol_lab.analytics.steps import (
    activity_label,
    bottlenecks,
    directly_follows,
    step_durations,
)
from protocol_lab.analytics.timelines import (
    OUTCOMES,
    REJECTED_SCHEMA,
    WORKFLOW_SCHEMA,
    OnError,
    PlotNamespace,
    Timelines,
)
from protocol_lab.analytics.vocabulary import FOREIGN_SCHEMA, Vocabulary
from protocol_lab.domain import DATA_DIR

SAMPLE_PATH = DATA_DIR / "samples" / "timelines.parquet"
"""The shipped sample of workflow timelines (see ``data/samples/make_sample.py``)."""

__all__ = [
    "DEFAULT_PAUSING",
    "DEFAULT_STOPPING",
    "ENGINE",
    "FOREIGN_SCHEMA",
    "OUTCOMES",
    "REJECTED_SCHEMA",
    "SAMPLE_PATH",
    "SLA_STATES",
    "WORKFLOW_SCHEMA",
    "Conformance",
    "LogMapping",
    "OnError",
    "PlotNamespace",
    "ProcessMap",
    "SlaSummary",
    "Timelines",
    "Vocabulary",
    "activity_label",
    "arrival_stats",
    "arrivals_by_hour",
    "bottlenecks",
    "business_clock",
    "business_seconds",
    "conformance",
    "cumulative_flow",
    "cycle_times",
    "directly_follows",
    "draw_process_map",
    "failure_rates",
    "failure_reasons",
    "handover_matrix",
    "handovers",
    "littles_law",
    "percentiles",
    "pm4py_frame",
    "process_map",
    "reassignment_summary",
    "reassignments",
    "reopen_rate",
    "reopens",
    "sla_agreement",
    "sla_status",
    "sla_summary",
    "step_durations",
    "step_intervals",
    "throughput",
    "time_in_state",
    "to_pm4py",
    "variants",
    "workload",
    "write_ocel2_json",
    "write_xes",
]
