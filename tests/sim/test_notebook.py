"""notebooks/02_capacity_planning.ipynb runs top to bottom: the plan is its first cell."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient

from protocol_lab.domain import DATA_DIR

NOTEBOOK = DATA_DIR.parent / "notebooks" / "02_capacity_planning.ipynb"


def test_notebook_plans_capacity_in_its_first_cell_and_runs_through() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=240,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    cells = [c for c in nb.cells if c.cell_type == "code"]
    outputs = [o for c in cells for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    first = cells[0]
    assert "plan_capacity(" in first.source
    assert "with_forecast(" in first.source
    assert "QueueTarget(" in first.source
    result = str(first.outputs)
    for queue in ("itsm-accessories", "itsm-fleet", "itsm-workflows", "itsm-high-priority"):
        assert queue in result
    assert "image/png" in cells[1].outputs[0]["data"]  # the picture that justifies the plan
    assert "'itsm-high-priority': False" in str(cells[2].outputs)  # stated honestly
    mimes = [m for o in outputs for m in o.get("data", {})]
    assert mimes.count("image/png") >= 3
    assert "Erlang C" in str(outputs)
