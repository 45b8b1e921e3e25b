"""Mappings for the logs ITSM tools export: ServiceNow, Jira and XES.

- ``servicenow``: an incident (or task) event log exported from ServiceNow, one row per update
  of an incident with the state after it (``number``, ``incident_state``, ``sys_updated_at``,
  ``sys_mod_count``, ``assignment_group``, ``assigned_to``, ``priority``, ``made_sla``,
  ``opened_at``, ``resolved_at``, ``closed_at``, ...), dates as ``29-02-2016 01:16`` and
  missing values as ``?``. A state log: time in each state; closed in ``Closed``.
- ``jira``: a Jira changelog (a search answer with ``expand=changelog``, or the flat changelog
  layout of :mod:`protocol_lab.analytics.jira`); statuses become a state log, closed in
  ``Done`` or ``Closed``.
- ``xes``: an XES log with ``lifecycle:transition`` start/complete events; each trace is a
  finished case.

A preset's mapping is a :class:`LogMapping`; ``Timelines.from_log(..., mapping={...})``
changes some of its fields (another time zone, more attribute columns).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import polars as pl

from protocol_lab.analytics.jira import SEQUENCE, changelog_snapshots
from protocol_lab.analytics.log_mapping import LogMapping
from protocol_lab.analytics.xes import CASE_PREFIX
from protocol_lab.domain import TimelineSchemaError

__all__ = ["PRESETS", "Preset", "preset"]

Prepare = Callable[[pl.LazyFrame, LogMapping], pl.LazyFrame]


@dataclass(frozen=True, slots=True)
class Preset:
    """A named mapping, with the reshaping its export needs before the mapping applies."""

    name: str
    mapping: LogMapping
    prepare: Prepare | None = None


SERVICENOW: Final = Preset(
    "servicenow",
    LogMapping(
        case="number",
        state="incident_state",
        timestamp="sys_updated_at",
        timestamp_format="%d-%m-%Y %H:%M",
        order="sys_mod_count",
        opened="opened_at",
        group="assignment_group",
        resource="assigned_to",
        trigger="contact_type",
        priority="priority",
        category="category",
        attributes=(
            "made_sla",
            "reassignment_count",
            "reopen_count",
            "impact",
            "urgency",
            "subcategory",
            "opened_at",
            "resolved_at",
            "closed_at",
            "closed_code",
            "knowledge",
        ),
        final=("Closed",),
        process="incident",
        missing=("?", ""),
    ),
)

JIRA: Final = Preset(
    "jira",
    LogMapping(
        case="key",
        state="status",
        timestamp="at",
        opened="created",
        order=SEQUENCE,
        resource="assignee",
        priority="priority",
        category="issuetype",
        attributes=("resolution", "resolutiondate"),
        final=("Done", "Closed"),
        process="issue",
    ),
    prepare=changelog_snapshots,
)

XES: Final = Preset(
    "xes",
    LogMapping(
        case=CASE_PREFIX + "concept:name",
        activity="concept:name",
        timestamp="time:timestamp",
        lifecycle="lifecycle:transition",
        resource="org:resource",
        group="org:group",
        attribute_prefix=CASE_PREFIX,
        complete_cases=True,
        process="log",
    ),
)

PRESETS: Final[dict[str, Preset]] = {p.name: p for p in (SERVICENOW, JIRA, XES)}
"""The presets by name."""


def preset(name: str) -> Preset:
    """The preset called ``name``; an unknown name raises naming the known ones."""
    try:
        return PRESETS[name.lower()]
    except KeyError:
        raise TimelineSchemaError(
            f"unknown preset {name!r}; one of {sorted(PRESETS)}", field="preset"
        ) from None
