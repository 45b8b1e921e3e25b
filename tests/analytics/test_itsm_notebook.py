"""notebooks/04_your_own_log.ipynb runs top to bottom on the shipped ServiceNow-shaped log, and
that log is the one its generator makes, with the structure of its known parameters."""

from __future__ import annotations

import gzip
import importlib.util
from types import ModuleType

import nbformat
import polars as pl
from nbclient import NotebookClient

from protocol_lab.analytics import Timelines
from protocol_lab.analytics.process_map import END, START
from protocol_lab.domain import DATA_DIR, SlaConfig

NOTEBOOK = DATA_DIR.parent / "notebooks" / "04_your_own_log.ipynb"
LOG = DATA_DIR / "samples" / "servicenow_incidents.csv.gz"
GENERATOR = DATA_DIR / "samples" / "make_servicenow_log.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_servicenow_log", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_log_is_the_generators_and_small() -> None:
    made = _generator().generate()
    with gzip.open(LOG, "rb") as handle:
        shipped = pl.read_csv(handle.read(), infer_schema=False)
    assert shipped.equals(made)
    assert LOG.stat().st_size < 1_000_000


def test_analyses_find_the_generators_structure() -> None:
    gen = _generator()
    tl = Timelines.from_log(LOG, preset="servicenow")
    # reassignments and reopens as the export counts them, case by case
    per_case = tl.reassignments()
    assert (per_case["reassignments"] == per_case["reassignment_count"]).all()
    reopens = tl.reopens()
    assert (reopens["reopens"] == reopens["reopen_count"]).all()
    # the moves the generator makes, and no other (same-minute updates keep their order)
    edges = set(tl.process_map().edges.select("source", "target").iter_rows())
    waits = set(gen.WAITS)
    assert edges == {
        (START, "New"),
        ("New", "Active"),
        ("Active", "Resolved"),
        ("Resolved", "Active"),
        ("Resolved", END),
        *{("Active", w) for w in waits},
        *{(w, "Active") for w in waits},
    }
    # the computed clock agrees with made_sla but for the flags the generator flipped
    agreement = tl.sla_agreement(
        config=_wall_clock(gen.SLA_HOURS),
    ).row(0, named=True)["agreement"]
    assert 1 - 2 * gen.P_FLAG_NOISE < agreement < 1 - gen.P_FLAG_NOISE / 3


def _wall_clock(hours: dict[str, float]) -> SlaConfig:
    return SlaConfig.model_validate(
        {"targets": [{"priority": p, "target_hours": h} for p, h in hours.items()]}
    )


def test_notebook_executes_and_shows_tables_and_pictures() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=120,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    mimes = [m for o in outputs for m in o.get("data", {})]
    assert mimes.count("image/png") >= 3  # state durations, handovers, process map
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("SLA attainment by priority" in h for h in html)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for call in ("from_log(", "sla(", "sla_agreement(", "time_in_state()", "process_map()"):
        assert call in code
    # nothing rejected on import
    assert "(0, 600)" in str(outputs[0])
