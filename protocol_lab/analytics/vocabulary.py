"""Which vocabulary a timeline speaks: protocol-lab's own, or the open one of a foreign log.

protocol-lab's own timelines (the service's, the simulator's) follow
:data:`~protocol_lab.domain.TIMELINE_SCHEMA`: ``task_queue``, ``trigger_type``, ``event`` and
``outcome`` are Enums, so a misspelt queue or event is refused when a log is loaded. A log that
another system wrote (ServiceNow, Jira, a process-mining tool) has its own group, channel and
lifecycle names; its timeline follows :data:`FOREIGN_SCHEMA`, the same columns with those four
as free strings. The dtype of ``event`` tells the two apart, so a frame cannot claim one
vocabulary and carry the other, and analyses written with expressions that read both (string
comparisons, ``cast(pl.String)``) run on either.
"""

from __future__ import annotations

from typing import Final, Literal

import polars as pl

from protocol_lab.domain import TIMELINE_SCHEMA

__all__ = [
    "FOREIGN_SCHEMA",
    "OPEN_COLUMNS",
    "VOCABULARY_KEY",
    "Vocabulary",
    "schema_for",
    "vocabulary_of",
]

Vocabulary = Literal["protocol-lab", "foreign"]
"""``protocol-lab``: names checked against the domain's enums; ``foreign``: names as the log has
them."""

OPEN_COLUMNS: Final = ("task_queue", "trigger_type", "event", "outcome")
"""The columns whose values a foreign log names in its own words."""

FOREIGN_SCHEMA: Final = pl.Schema(
    {
        name: pl.String() if name in OPEN_COLUMNS else dtype
        for name, dtype in TIMELINE_SCHEMA.items()
    }
)
"""The timeline columns of a foreign log: :data:`OPEN_COLUMNS` are strings, the rest as ever."""

VOCABULARY_KEY: Final = "protocol_lab.vocabulary"
"""The Parquet metadata key that marks a file written from a foreign log."""


def schema_for(vocabulary: Vocabulary) -> pl.Schema:
    """The events schema of a vocabulary."""
    return FOREIGN_SCHEMA if vocabulary == "foreign" else TIMELINE_SCHEMA


def vocabulary_of(schema: pl.Schema) -> Vocabulary:
    """The vocabulary an events frame with this schema speaks (protocol-lab's: ``event`` is
    its Enum)."""
    return "protocol-lab" if schema.get("event") == TIMELINE_SCHEMA["event"] else "foreign"
