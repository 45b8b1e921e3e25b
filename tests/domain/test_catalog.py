"""The workflow catalog: every shipped plan loads; broken files name file, definition, field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from protocol_lab.domain import (
    DATA_DIR,
    ActivityStep,
    CatalogError,
    SignalStep,
    TaskQueue,
    load_catalog,
)

REQUIRED = {
    "Laptop Provisioning - New Hire": TaskQueue.ACCESSORIES,
    "VPN Access Revocation": TaskQueue.NETWORK,
    "P1 Incident Response": TaskQueue.HIGH_PRIORITY,
    "SLA Escalation": TaskQueue.HIGH_PRIORITY,
    "Device Enrollment": TaskQueue.FLEET,
    "Password Reset": TaskQueue.WORKFLOWS,
}


def test_every_shipped_definition_loads() -> None:
    catalog = load_catalog()
    files = list((DATA_DIR / "definitions").glob("*.yaml"))
    assert len(catalog) == len(files) >= 6
    for name, queue in REQUIRED.items():
        assert catalog[name].task_queue is queue


def test_laptop_provisioning_matches_the_spec_example() -> None:
    plan = load_catalog()["Laptop Provisioning - New Hire"]
    assert len(plan.steps) == 5
    first, second, third = plan.steps[:3]
    assert isinstance(first, ActivityStep)
    assert first.done == "Asset availability checked"
    assert isinstance(second, SignalStep)
    assert second.detail == "Awaiting manager approval"
    assert second.signal == "approval_received"
    assert isinstance(third, ActivityStep)
    assert third.detail == "Provisioning asset"
    assert third.compensation is not None
    assert plan.signals == {"approval_received"}


def test_duration_models_sample_positive_times() -> None:
    rng = np.random.default_rng(7)
    for plan in load_catalog().values():
        for step in plan.steps:
            model = step.duration if isinstance(step, ActivityStep) else step.response
            draws = [model.sample(rng) for _ in range(200)]
            assert min(draws) >= 0
            assert model.mean() > 0


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    return path


def test_missing_field_names_file_definition_and_field(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
name: Broken Flow
task_queue: itsm-workflows
steps:
  - {id: a, kind: activity, activity: ticket_update, detail: Doing}
""",
    )
    with pytest.raises(CatalogError) as info:
        load_catalog(tmp_path)
    message = str(info.value)
    assert str(path) in message
    assert "'Broken Flow'" in message
    assert "steps.0.activity.done" in message


def test_unknown_task_queue_is_reported(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "name: X\ntask_queue: itsm-moon\nsteps: [{id: a, kind: signal, signal: s,"
        " detail: d, done: e, timeout_s: 5}]\n",
    )
    with pytest.raises(CatalogError, match="field task_queue"):
        load_catalog(tmp_path)


def test_invalid_yaml_is_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: [unclosed\n")
    with pytest.raises(CatalogError, match="not valid YAML") as info:
        load_catalog(tmp_path)
    assert str(path) in str(info.value)


def test_duplicate_step_ids_and_bad_enqueue_params(tmp_path: Path) -> None:
    _write(
        tmp_path,
        """
name: Dup
task_queue: itsm-fleet
steps:
  - {id: a, kind: activity, activity: enqueue_job, detail: d, done: e, params: {queue: nowhere}}
""",
    )
    with pytest.raises(CatalogError, match=r"params\.queue"):
        load_catalog(tmp_path)


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no workflow definitions"):
        load_catalog(tmp_path)
