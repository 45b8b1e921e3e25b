"""Temporal: the plan-interpreting workflow (``workflows``), its activities (``activities``), the
worker (``worker``), ids and search attributes; what crosses the wire is
:mod:`protocol_lab.domain.wire`, and timelines are built from histories by
:mod:`protocol_lab.domain.history`.
Import the submodules; nothing is re-exported here, so the workflow sandbox loads only what a
module needs."""

__all__: list[str] = []
