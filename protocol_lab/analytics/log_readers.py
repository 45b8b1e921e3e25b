"""Read a foreign log's rows, as the file has them, numbered from 0 in the ``__row`` column.

CSV, plain or gzip (every column read as text, so a stray value never changes a column's
type), Parquet, JSON lines, JSON (a list of rows, or a Jira search page / list of issues with
their changelog) and XES (plain or gzip). A frame (polars or pandas) is numbered as it comes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import polars as pl

from protocol_lab.domain import TimelineSchemaError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ROW", "read_rows", "source_kind"]

ROW: Final = "__row"
"""The column numbering the source rows, from 0: a CSV's data row r is line r + 2, an XES row
the r-th event, a Jira search answer's row its r-th changelog item (an issue without changes
counts one)."""


def source_kind(source: str | Path | object) -> str:
    """The reader a source takes: ``csv``, ``csv.gz``, ``parquet``, ``jsonl``, ``json``, ``xes``,
    ``frame``."""
    if not isinstance(source, str | Path):
        return "frame"
    name = Path(source).name.lower()
    if name.endswith((".xes", ".xes.gz")):
        return "xes"
    for suffix, kind in (
        (".csv", "csv"),
        (".csv.gz", "csv.gz"),
        (".parquet", "parquet"),
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".json", "json"),
    ):
        if name.endswith(suffix):
            return kind
    raise TimelineSchemaError(
        f"{Path(source).name}: unsupported log file "
        "(.csv[.gz], .parquet, .jsonl, .ndjson, .json, .xes[.gz])"
    )


def read_rows(source: str | Path | pl.DataFrame | pl.LazyFrame | pd.DataFrame) -> pl.LazyFrame:
    """The source's rows with their number in :data:`ROW` (lazy where the format allows)."""
    kind = source_kind(source)
    if kind == "frame":
        frame = source if isinstance(source, pl.DataFrame | pl.LazyFrame) else None
        if frame is None:
            frame = pl.from_pandas(source)  # type: ignore[arg-type]
        return frame.lazy().with_row_index(ROW)
    file = Path(source)  # type: ignore[arg-type]
    if not file.exists():
        raise TimelineSchemaError(f"{file}: no such file")
    if kind == "csv":
        return pl.scan_csv(file, infer_schema=False, row_index_name=ROW)
    if kind == "csv.gz":  # decompressed in memory: a compressed file cannot be scanned
        return pl.read_csv(file, infer_schema=False, row_index_name=ROW).lazy()
    if kind == "parquet":
        return pl.scan_parquet(file).with_row_index(ROW)
    if kind == "xes":
        from protocol_lab.analytics.xes import read_xes

        return read_xes(file).lazy().with_row_index(ROW)
    if kind == "jsonl":
        return _json_lines(file).lazy().with_row_index(ROW)
    return _json(file).lazy().with_row_index(ROW)


def _json_lines(file: Path) -> pl.DataFrame:
    rows: list[Any] = []
    with file.open(encoding="utf-8") as handle:
        for i, line in enumerate(line for line in handle if line.strip()):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise TimelineSchemaError(f"not valid JSON: {exc.msg}", row=i) from None
    return _records(rows)


def _json(file: Path) -> pl.DataFrame:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TimelineSchemaError(f"{file.name}: not valid JSON: {exc.msg}") from None
    if isinstance(data, Mapping) and isinstance(data.get("issues"), list):
        data = data["issues"]
    if not isinstance(data, list):
        raise TimelineSchemaError(f"{file.name}: expected a list of rows or a Jira search page")
    return _records(data)


def _records(rows: list[Any]) -> pl.DataFrame:
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TimelineSchemaError(f"must be an object, got {type(row).__name__}", row=i)
    if rows and "changelog" in rows[0]:
        from protocol_lab.analytics.jira import flatten_issues

        return flatten_issues(rows)
    if not rows:
        return pl.DataFrame()
    columns: dict[str, list[Any]] = {key: [] for row in rows for key in row}
    for row in rows:
        for key, column in columns.items():
            value = row.get(key)
            column.append(None if value is None else _text(value))
    return pl.DataFrame(columns, schema=dict.fromkeys(columns, pl.String))


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)
