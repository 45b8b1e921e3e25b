"""Temporal: the plan-interpreting workflow (``workflows``), its activities (``activities``), the
worker (``worker``), ids, search attributes and the messages that cross the wire
(``messages``); timelines are built from histories by :mod:`protocol_lab.domain.history`.
Import the submodules; nothing is re-exported here, so the workflow sandbox loads only what a
module needs."""

__all__: list[str] = []
