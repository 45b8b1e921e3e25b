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
    return tag[tag.index("}") + 1 :] if tag[:1] == "{" else tag


class _Rows:
    """Rows kept column by column, grouped by their set of keys (the events of a log mostly
    share one), and numbered so the file's order comes back."""

    def __init__(self) -> None:
        self.groups: dict[tuple[str, ...], tuple[list[int], list[list[str]]]] = {}
        self.count = 0

    def add(self, row: dict[str, str]) -> None:
        keys = tuple(row)
        group = self.groups.get(keys)
        if group is None:
            group = self.groups[keys] = ([], [[] for _ in keys])
        group[0].append(self.count)
        for column, value in zip(group[1], row.values(), strict=True):
            column.append(value)
        self.count += 1

    def frame(self) -> pl.DataFrame:
        parts = [
            pl.DataFrame(
                [pl.Series("__n", numbers, dtype=pl.Int64)]
                + [pl.Series(k, c, dtype=pl.String) for k, c in zip(keys, columns, strict=True)]
            )
            for keys, (numbers, columns) in self.groups.items()
        ]
        return pl.concat(parts, how="diagonal").sort("__n").drop("__n")


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
    rows = _Rows()
    events: list[dict[str, str]] = []  # of the trace being read; its attributes come at its end
    try:
        with _open(file) as handle:
            parser = iterparse(handle, events=("end",))
            for _, element in parser:
                tag = _local(element.tag)
                if tag == "event":
                    events.append(_attributes(element))
                elif tag == "trace":
                    trace = {CASE_PREFIX + k: v for k, v in _attributes(element).items()}
                    for event in events:
                        rows.add({**trace, **event})
                    events = []
                    element.clear()  # the trace and its events are read: free them
            root = parser.root  # type: ignore[attr-defined]
    except SyntaxError as exc:  # ParseError; gzip's BadGzipFile is an OSError
        raise TimelineSchemaError(f"{file.name}: not well-formed XML ({exc})") from None
    except (OSError, EOFError) as exc:
        raise TimelineSchemaError(f"{file.name}: cannot be read ({exc})") from None
    if root is None or _local(root.tag) != "log":
        tag = "none" if root is None else _local(root.tag)
        raise TimelineSchemaError(f"{file.name}: not an XES log (root <{tag}>)")
    if not rows.count:
        raise TimelineSchemaError(f"{file.name}: no events in any trace")
    return rows.frame()


def _attributes(element: Element) -> dict[str, str]:
    """The attributes directly inside an event or trace (nested ones are not read)."""
    out: dict[str, str] = {}
    for child in element:
        if _local(child.tag) in _ATTRIBUTES:
            key = child.get("key")
            value = child.get("value")
            if key is not None and value is not None:
                out[key] = value
    return out
