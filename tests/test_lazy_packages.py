"""The packages that load their public names lazily (from the stub beside their __init__): every
name listed resolves, and a name loads only the submodules it needs."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

LAZY_PACKAGES = ["protocol_lab.analytics", "protocol_lab.domain", "protocol_lab.sim"]


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_listed_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__all__
    unresolved = [name for name in module.__all__ if getattr(module, name, None) is None]
    assert unresolved == []
    assert sorted(dir(module)) == sorted(module.__all__)


def test_loading_timelines_and_a_graph_leaves_the_other_analyses_unloaded() -> None:
    # A fresh interpreter: this one has imported everything already.
    script = (
        "import json, sys\n"
        "from protocol_lab.analytics import Timelines, directly_follows, variants\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('protocol_lab'))))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(run.stdout))
    assert "protocol_lab.analytics.timelines" in loaded
    assert "protocol_lab.analytics.outcomes" in loaded
    for unneeded in ("export", "conformance", "log_mapping", "itsm", "process_map", "sla"):
        assert f"protocol_lab.analytics.{unneeded}" not in loaded
    assert "protocol_lab.domain.paths" not in loaded  # the sample's path: asked for by name
