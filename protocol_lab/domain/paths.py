"""Where the shipped data lives: the catalog, rules, scenarios, SLA targets and samples.

An installed wheel carries the repository's ``data`` folder as the package data
``protocol_lab/data``, found through :mod:`importlib.resources`; in a source checkout (or an
editable install) there is no such folder and the ``data`` folder beside the packages is used.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["DATA_DIR", "SAMPLE_PATH", "data_dir"]


def data_dir() -> Path:
    """The installed package data if there is any, else the repository's ``data`` folder."""
    shipped = resources.files("protocol_lab") / "data"
    # a wheel is always installed unpacked, so its package data is a real folder
    if isinstance(shipped, Path) and shipped.is_dir():
        return shipped
    return Path(__file__).resolve().parents[2] / "data"


DATA_DIR = data_dir()
SAMPLE_PATH = DATA_DIR / "samples" / "timelines.parquet"
