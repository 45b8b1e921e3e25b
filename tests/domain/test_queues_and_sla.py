"""The queue registry and the SLA file."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol_lab.domain import (
    JOB_QUEUES,
    TASK_QUEUES,
    JobQueue,
    SlaConfigError,
    TaskQueue,
    load_sla_config,
)


def test_registry_has_five_task_queues_and_twelve_job_queues() -> None:
    assert {q.value for q in TASK_QUEUES} == {
        "itsm-workflows",
        "itsm-accessories",
        "itsm-fleet",
        "itsm-network",
        "itsm-high-priority",
    }
    assert len(JOB_QUEUES) == 12
    assert {"email", "notification", "sync", "ai-inference", "report-generation"} <= {
        q.value for q in JobQueue
    }
    for spec in [*TASK_QUEUES.values(), *JOB_QUEUES.values()]:
        assert spec.purpose


def test_shipped_sla_targets_cover_every_task_queue() -> None:
    config = load_sla_config()
    queues = {t.task_queue for t in config.targets if t.task_queue is not None}
    assert queues == set(TaskQueue)
    assert config.calendar.timezone == "Europe/London"


def test_sla_target_needs_exactly_one_scope(tmp_path: Path) -> None:
    path = tmp_path / "sla.yaml"
    path.write_text("targets:\n  - {task_queue: itsm-fleet, priority: P1, target_hours: 2}\n")
    with pytest.raises(SlaConfigError, match=r"targets\.0"):
        load_sla_config(path)
