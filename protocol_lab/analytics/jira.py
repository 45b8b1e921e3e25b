"""Jira changelogs: issues with their changelog into status snapshots.

Jira's REST search (``/rest/api/2/search?expand=changelog``) answers issues whose
``changelog.histories`` list each change: when (``created``), who (``author``) and the fields
changed (``items``: ``field``, ``fromString``, ``toString``). :func:`flatten_issues` turns them
into the flat changelog layout, one row per changed field, which CSV exports of changelogs use
too::

    key, issuetype, priority, status, assignee, created, resolutiondate, resolution,
    field, from, to, at, author

(``status``, ``assignee``, ``priority`` are the issue's current values; an issue without
changes has one row with no ``field``). :func:`changelog_snapshots` turns that into a state log:
a row when the issue was created, in the status it was created in (the ``from`` of its first
status change), and a row per history (the changes made at one time), with the status and
assignee from then on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import polars as pl

from protocol_lab.domain import TimelineSchemaError

if TYPE_CHECKING:
    from protocol_lab.analytics.log_mapping import LogMapping

__all__ = ["CHANGELOG_COLUMNS", "SEQUENCE", "changelog_snapshots", "flatten_issues"]

CHANGELOG_COLUMNS: Final = (
    "key",
    "issuetype",
    "priority",
    "status",
    "assignee",
    "created",
    "resolutiondate",
    "resolution",
    "field",
    "from",
    "to",
    "at",
    "author",
)
"""The flat changelog layout."""

SEQUENCE: Final = "__jira_seq"
"""Orders an issue's creation row before a change at the same time."""

_NEEDED: Final = ("key", "created", "field", "from", "to", "at")
_ROW: Final = "__row"
_NOBODY: Final = "\x00"


def _name(value: Any) -> str | None:
    """A Jira field value as text: objects by their name, display name or value."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        for key in ("name", "displayName", "value", "key"):
            if isinstance(value.get(key), str):
                return str(value[key])
        return None
    return str(value)


def flatten_issues(issues: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """Issues of a Jira search answer (with ``expand=changelog``) in the flat changelog layout."""
    rows: list[tuple[str | None, ...]] = []
    for issue in issues:
        fields = issue.get("fields")
        fields = fields if isinstance(fields, Mapping) else {}
        base = (
            _name(issue.get("key")),
            _name(fields.get("issuetype")),
            _name(fields.get("priority")),
            _name(fields.get("status")),
            _name(fields.get("assignee")),
            _name(fields.get("created")),
            _name(fields.get("resolutiondate")),
            _name(fields.get("resolution")),
        )
        changelog = issue.get("changelog")
        histories = changelog.get("histories") if isinstance(changelog, Mapping) else None
        changed = False
        for history in histories if isinstance(histories, list) else []:
            if not isinstance(history, Mapping):
                continue
            author = _name(history.get("author"))
            items = history.get("items")
            for item in items if isinstance(items, list) else []:
                if isinstance(item, Mapping):
                    changed = True
                    rows.append(
                        (
                            *base,
                            _name(item.get("field")),
                            _name(item.get("fromString", item.get("from"))),
                            _name(item.get("toString", item.get("to"))),
                            _name(history.get("created")),
                            author,
                        )
                    )
        if not changed:
            rows.append((*base, None, None, None, None, None))
    return pl.DataFrame(rows, schema=dict.fromkeys(CHANGELOG_COLUMNS, pl.String), orient="row")


def changelog_snapshots(rows: pl.LazyFrame, mapping: LogMapping) -> pl.LazyFrame:
    """The flat changelog as status snapshots (``status``, ``assignee`` from then on, at
    ``at``), with a first row per issue at ``created``; other columns pass through."""
    schema = rows.collect_schema()
    missing = [c for c in _NEEDED if c not in schema]
    if missing:
        raise TimelineSchemaError(f"missing columns {missing}", field=missing[0])
    field = pl.col("field").cast(pl.String).str.to_lowercase()
    ordered = rows.with_columns(
        mapping.time("at", schema["at"]).alias("__at"), field.alias("__field")
    ).sort("key", "__at", _ROW, nulls_last=True)

    def current(name: str) -> pl.Expr:
        return pl.col(name) if name in schema else pl.lit(None, dtype=pl.String)

    def changed(name: str) -> pl.Expr:
        return pl.col("__field") == name

    def marked(value: str, name: str) -> pl.Expr:
        # a change to or from "nobody" has a null value: held as a marker while spreading
        return pl.when(changed(name)).then(pl.col(value).fill_null(_NOBODY))

    def before(name: str) -> pl.Expr:  # the value before the field's first change
        first_from = marked("from", name).drop_nulls().first().over("key")
        return pl.when(changed(name).any().over("key")).then(first_from).otherwise(current(name))

    def after(name: str) -> pl.Expr:  # the value from this row on
        return marked("to", name).forward_fill().over("key").fill_null(before(name))

    def unmarked(expr: pl.Expr) -> pl.Expr:
        return pl.when(expr == _NOBODY).then(None).otherwise(expr)

    snapshots = ordered.with_columns(
        unmarked(after("status")).alias("__status"),
        unmarked(after("assignee")).alias("__assignee"),
    )
    created = (
        ordered.with_columns(
            unmarked(before("status")).alias("__status"),
            unmarked(before("assignee")).alias("__assignee"),
        )
        .filter(pl.col("key").is_first_distinct())
        .with_columns(pl.col("created").alias("at"), pl.lit(0).alias(SEQUENCE))
    )
    # the items of one history are one update: its last row holds the state after all of them
    one_update = pl.struct("key", "__at").is_last_distinct()
    changes = snapshots.filter(pl.col("__field").is_not_null() & one_update).with_columns(
        pl.lit(1).alias(SEQUENCE)
    )
    return (
        pl.concat([created, changes], how="vertical_relaxed")
        .with_columns(pl.col("__status").alias("status"), pl.col("__assignee").alias("assignee"))
        .drop("__status", "__assignee", "__at", "__field")
    )
