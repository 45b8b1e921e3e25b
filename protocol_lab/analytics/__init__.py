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

# Every public name is imported on first use from the submodule that defines it (an analysis
# session that loads timelines and draws a graph does not import the exports, the conformance
# checker or the log mappings); the names, and their types for type checkers, are the stub
# beside this file (__init__.pyi).
import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
