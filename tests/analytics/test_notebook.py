"""notebooks/01_timeline_analytics.ipynb runs top to bottom on the shipped sample."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient

from protocol_lab.domain import DATA_DIR

NOTEBOOK = DATA_DIR.parent / "notebooks" / "01_timeline_analytics.ipynb"


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
    assert mimes.count("image/png") >= 6
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("SLA attainment by task_queue" in h for h in html)
    # the top of the notebook: load, SLA table, cumulative flow, worst bottleneck
    first = [c for c in nb.cells if c.cell_type == "code"][:4]
    assert "sla(" in first[1].source
    assert "cumulative_flow()" in first[2].source
    assert "bottlenecks()" in first[3].source
    assert "provision_asset" in str(first[3].outputs)
