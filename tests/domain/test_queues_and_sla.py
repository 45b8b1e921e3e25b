"""The queue registry and the SLA file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from protocol_lab.domain import (
    JOB_QUEUES,
    TASK_QUEUES,
    BusinessCalendar,
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
    assert all(spec.purpose for spec in TASK_QUEUES.values())
    assert all(spec.purpose for spec in JOB_QUEUES.values())


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


def test_sla_file_errors_name_the_file_and_the_field(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(SlaConfigError, match=rf"^{re.escape(str(missing))}: \[Errno 2\]"):
        load_sla_config(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("targets: [unclosed\n")
    with pytest.raises(SlaConfigError, match=rf"^{re.escape(str(broken))}: while parsing"):
        load_sla_config(broken)
    bad = tmp_path / "bad.yaml"
    bad.write_text("targets:\n  - {priority: P1, target_hours: 0}\n")
    with pytest.raises(
        SlaConfigError,
        match=rf"^{re.escape(str(bad))}: field targets\.0\.target_hours: Input should be greater",
    ):
        load_sla_config(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_sla_config(empty).targets == ()
    assert load_sla_config(str(empty)).calendar.timezone == "UTC"


def test_an_unknown_subdivision_is_refused_with_examples() -> None:
    import holidays

    # the United States have more than 20 subdivisions: the first 20 are the examples
    subdivisions = holidays.list_supported_countries()["US"]
    assert len(subdivisions) > 20
    with pytest.raises(ValidationError) as caught:
        BusinessCalendar(country="US", subdivision="ZZZ")
    assert caught.value.errors()[0]["msg"] == (
        f"Value error, US has no subdivision 'ZZZ'; e.g. {', '.join(subdivisions[:20])}"
    )
    with pytest.raises(ValidationError, match="country 'XX' is not one the holidays package"):
        BusinessCalendar(country="XX")
