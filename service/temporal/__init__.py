"""Temporal: the plan-interpreting workflow (``workflows``), its activities (``activities``), the
worker (``worker``), history-built timelines (``timeline``), ids, search attributes and the
messages that cross the wire (``messages``). Import the submodules; nothing is re-exported here,
so the workflow sandbox loads only what a module needs."""

__all__: list[str] = []
