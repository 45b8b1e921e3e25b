"""notebooks/03_replay_and_validate.ipynb runs top to bottom on a small replay."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from protocol_lab.demo import ServiceHandle
from protocol_lab.domain import DATA_DIR

from .conftest import COMPRESSION

NOTEBOOK = DATA_DIR.parent / "notebooks" / "03_replay_and_validate.ipynb"


def test_notebook_replays_compares_and_calibrates(
    live: ServiceHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROTOCOL_LAB_URL", live.base_url)
    monkeypatch.setenv("PROTOCOL_LAB_TOKEN", live.token)
    monkeypatch.setenv("TEMPORAL_ADDRESS", live.temporal_address)
    monkeypatch.setenv("REPLAY_COMPRESSION", str(COMPRESSION))
    monkeypatch.setenv("REPLAY_HOURS", "8")
    nb = nbformat.read(NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=240,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    mimes = [m for o in outputs for m in o.get("data", {})]
    assert mimes.count("image/png") >= 2
    text = "".join(str(o.get("text", "")) + str(o.get("data", {})) for o in outputs)
    assert "all workflows" in text  # the pooled distances were printed
    assert "wasserstein_s" in text
    assert "relative_error" in text  # the calibration's error table
