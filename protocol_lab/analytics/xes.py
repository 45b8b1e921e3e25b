"""Read an XES event log (plain or gzip) into one row per event, with the standard library.

The file is streamed with :func:`xml.etree.ElementTree.iterparse` and each trace freed once
read, so memory holds the rows, not the document. A row has the event's attributes under their
keys (``concept:name``, ``time:timestamp``, ``lifecycle:transition``, ``org:resource``, ...)
and its trace's attributes prefixed ``case:`` (``case:concept:name`` is the case id), the
layout process-mining tools use. Values stay the file's text; the mapping reads times.
Attributes nested inside other attributes (lists, containers) and ``<global>`` defaults are
not read.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Final
from xml.etree.ElementTree import Element, iterparse

import polars as pl

from protocol_lab.domain import TimelineSchemaError

__all__ = ["CASE_PREFIX", "read_xes"]

CASE_PREFIX: Final = "case:"
"""The prefix of trace attributes in a row."""

_ATTRIBUTES: Final = frozenset({"string", "date", "int", "float", "boolean", "id"})
_GZIP_MAGIC: Final = b"\x1f\x8b"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class _Columns:
    """Rows gathered column by column (a key first seen late is null in earlier rows)."""

    def __init__(self) -> None:
        self.columns: dict[str, list[str | None]] = {}
        self.height = 0

    def add(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            column = self.columns.get(key)
            if column is None:
                column = self.columns[key] = [None] * self.height
            column.append(value)
        self.height += 1
        for column in self.columns.values():
            if len(column) < self.height:
                column.append(None)

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            {k: pl.Series(k, v, dtype=pl.String) for k, v in self.columns.items()},
            schema={k: pl.String for k in self.columns},
        )


def _open(path: Path) -> gzip.GzipFile | io.BufferedReader:
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == _GZIP_MAGIC:
        return gzip.GzipFile(path, "rb")
    return path.open("rb")


def read_xes(path: str | Path) -> pl.DataFrame:
    """One row per event of the XES file at ``path`` (gzip is recognised by its first bytes).

    Raises :class:`TimelineSchemaError` for a file that is not well-formed XML or has no
    ``<log>`` root.
    """
    file = Path(path)
    rows = _Columns()
    stack: list[str] = []
    trace: dict[str, str] = {}
    event: dict[str, str] = {}
    try:
        with _open(file) as handle:
            for kind, element in iterparse(handle, events=("start", "end")):
                tag = _local(element.tag)
                if kind == "start":
                    if not stack and tag != "log":
                        raise TimelineSchemaError(f"{file.name}: not an XES log (root <{tag}>)")
                    stack.append(tag)
                    if tag == "trace":
                        trace = {}
                    elif tag == "event":
                        event = {}
                    continue
                stack.pop()
                parent = stack[-1] if stack else ""
                if tag in _ATTRIBUTES:
                    _take(element, parent, trace, event)
                elif tag == "event":
                    rows.add({**{CASE_PREFIX + k: v for k, v in trace.items()}, **event})
                    if parent == "trace":
                        continue  # freed with its trace, which still has attributes to read
                    element.clear()
                elif tag == "trace":
                    element.clear()
    except SyntaxError as exc:  # ParseError; gzip's BadGzipFile is an OSError
        raise TimelineSchemaError(f"{file.name}: not well-formed XML ({exc})") from None
    except (OSError, EOFError) as exc:
        raise TimelineSchemaError(f"{file.name}: cannot be read ({exc})") from None
    return rows.frame()


def _take(element: Element, parent: str, trace: dict[str, str], event: dict[str, str]) -> None:
    key = element.get("key")
    value = element.get("value")
    if key is None or value is None:
        return
    if parent == "event":
        event[key] = value
    elif parent == "trace":
        trace[key] = value
