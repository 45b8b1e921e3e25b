"""Workflow timelines into dataframes: loading, SLA and throughput analyses, pictures, exports.

Start with :class:`Timelines` (``Timelines.from_file``, ``from_frame``, ``from_api``,
``from_temporal``); the analyses take and return polars frames.
"""

from protocol_lab.analytics.timelines import (
    OUTCOMES,
    REJECTED_SCHEMA,
    WORKFLOW_SCHEMA,
    OnError,
    Timelines,
)

__all__ = ["OUTCOMES", "REJECTED_SCHEMA", "WORKFLOW_SCHEMA", "OnError", "Timelines"]
