"""``protocol-lab logs import``: a foreign log to a timelines Parquet file, with a summary."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from protocol_lab.analytics.timelines import Timelines
from protocol_lab.domain import TimelineSchemaError

__all__ = ["import_log", "load_mapping"]


def load_mapping(path: str | Path) -> dict[str, Any]:
    """The mapping fields in a YAML or JSON file (an object of :class:`LogMapping` fields)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
        data = json.loads(text) if file.suffix.lower() == ".json" else yaml.safe_load(text)
    except OSError as exc:
        raise TimelineSchemaError(f"{file}: cannot be read ({exc.strerror})") from None
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0]
        raise TimelineSchemaError(f"{file}: not valid YAML/JSON ({reason})") from None
    if not isinstance(data, Mapping):
        raise TimelineSchemaError(f"{file}: expected an object of mapping fields")
    return dict(data)


def import_log(
    source: str | Path,
    out: str | Path,
    *,
    preset: str | None = None,
    mapping: str | Path | None = None,
    set_aside: bool = False,
) -> list[str]:
    """Read ``source`` with :meth:`Timelines.from_log`, write it to ``out`` and return the
    summary lines; a bad file or row raises :class:`TimelineSchemaError`."""
    fields = load_mapping(mapping) if mapping is not None else None
    try:
        timelines = Timelines.from_log(
            source,
            preset=preset,
            mapping=fields,
            on_error="set_aside" if set_aside else "raise",
        )
        written = timelines.write_parquet(out)
        counts = timelines.workflows.select(
            pl.len().alias("cases"),
            (pl.col("outcome").cast(pl.String) != "open").sum().alias("closed"),
        ).collect()
        events = timelines.events.select(pl.len()).collect().item()
    except pl.exceptions.PolarsError as exc:
        reason = str(exc).strip().splitlines()[0]
        raise TimelineSchemaError(f"{Path(source).name}: cannot be read ({reason})") from None
    cases, closed = counts.row(0)
    lines = [f"{cases} cases ({closed} closed), {events} events -> {written}"]
    rejected = timelines.rejected
    if rejected.height:
        lines.append(f"{rejected.height} rows set aside; the first:")
        lines.extend(
            f"  row {r['row']}, field {r['field']!r}: {r['error']}"
            for r in rejected.head(10).iter_rows(named=True)
        )
    return lines
