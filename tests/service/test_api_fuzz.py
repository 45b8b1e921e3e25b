"""A bounded fuzz run of the API over its own live OpenAPI document.

The app runs in a real uvicorn on a free port with its own store, on the session's Temporal,
Redis and worker. Every operation gets generated requests (valid ones, then invalid ones) with
an admin token, first with generated ids, then with the ids of real resources so the handlers
behind ``{id}`` paths are reached too. Each response is checked: no 5xx, the status documented,
the body as documented, and no 2xx without the token. The run is derandomized (the same cases
every time) and bounded per operation; it prints what it generated and what failed.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI, Query
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from live_server import serving
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from service.api.errors import ErrorBody, install_error_handlers
from service.api.openapi import CONFLICTS, install_openapi
from service.app import create_app
from service.settings import Settings

pytestmark = [pytest.mark.temporal, pytest.mark.redis]

EXAMPLES: dict[GenerationMode, int] = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 10}
EXAMPLES_WITH_REAL_IDS = 15
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, ignored_auth]
# Archiving moves closed workflows out of the session's Temporal, under other tests' feet: the
# fuzz run archives only workflows closed longer ago than any of them.
ARCHIVE_BODY = {"older_than_s": 9 * 366 * 86400}
# What generating and sending cases imports on first use, imported before the fuzzing thread
# starts: Python 3.11 can fail to build a syntax tree on two threads at once ("AST constructor
# recursion depth mismatch"), and the service imports modules on its own threads meanwhile.
LAZY_MODULES = (
    "hypothesis.strategies._internal.flatmapped",
    "hypothesis.strategies._internal.random",
    "hypothesis.strategies._internal.regex",
    "schemathesis.generation.body_overrides",
    "schemathesis.generation.dictionaries",
    "schemathesis.transport.asgi",
    "schemathesis.transport.wsgi",
    "schemathesis.wfc.escalation",
)


@dataclass
class FuzzReport:
    """Cases sent and failures seen, per operation."""

    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def summary(self, wall_s: float) -> str:
        """A printable table of the run."""
        lines = [f"{count:5d}  {label}" for label, count in sorted(self.cases.items())]
        lines.append(
            f"{sum(self.cases.values()):5d}  cases in total, {len(self.cases)} operations,"
            f" {len(self.failures)} failures, {wall_s:.1f} s"
        )
        seen = sorted(self.statuses.items())
        lines.append("statuses: " + ", ".join(f"{code}: {n}" for code, n in seen))
        return "\n".join(["API fuzz run:", *lines, *self.failures])


@pytest.fixture(scope="module")
def live_api(service_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app in a real uvicorn on a free port, with its own store; its base URL."""
    state: Path = tmp_path_factory.mktemp("fuzz")
    settings = service_settings.model_copy(
        update={"database_url": f"sqlite+aiosqlite:///{state / 'fuzz.db'}", "state_dir": state}
    )
    with serving(create_app(settings), name="fuzz-uvicorn") as base_url:
        yield base_url


def _real_ids(base_url: str, headers: dict[str, str]) -> dict[str, str]:
    """Path parameters naming real resources: a running workflow, a rule, a ticket, a job."""
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        workflow = client.post(
            "/v1/workflows",
            json={"name": "Laptop Provisioning - New Hire", "task_queue": "itsm-accessories"},
        )
        rule = client.post(
            "/v1/automation/rules",
            json={
                "name": "Fuzzed rule",
                "trigger": "webhook",
                "action": {"type": "update_field", "field": "category", "value": "fuzzed"},
            },
        )
        ticket = client.post("/v1/tickets", json={"title": "Fuzzed ticket"})
        job = client.post("/v1/jobs/queues/export/jobs", json={"name": "tickets", "job_id": "fuzz"})
    for response in (workflow, rule, ticket, job):
        assert response.status_code in (200, 201, 202), response.text
    return {
        "workflow_id": workflow.json()["id"],
        "rule_id": rule.json()["id"],
        "ticket_id": ticket.json()["id"],
        "queue": "export",
        "job_id": job.json()["id"],
    }


@dataclass(frozen=True)
class _Run:
    label: str
    strategy: Any
    examples: int


def _runs(base_url: str, real_ids: dict[str, str]) -> list[_Run]:
    """Generated ids first, then real ones; a real resource is deleted or cancelled last."""
    for module in LAZY_MODULES:
        importlib.import_module(module)
    schema: OpenApiSchema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    generated: list[_Run] = []
    on_real: list[_Run] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        overrides: dict[str, Any] = {}
        if operation.path == "/v1/workflows/archive":
            overrides["body"] = ARCHIVE_BODY
        for mode, examples in EXAMPLES.items():
            strategy = operation.as_strategy(generation_mode=mode, **overrides)
            generated.append(_Run(label, strategy, examples))
        names = re.findall(r"{(\w+)}", operation.path)
        ids = {name: real_ids[name] for name in names if name in real_ids}
        if ids:
            strategy = operation.as_strategy(path_parameters=ids, **overrides)
            on_real.append(_Run(label, strategy, EXAMPLES_WITH_REAL_IDS))
    on_real.sort(key=lambda run: run.label.startswith("DELETE") or run.label.endswith("/cancel"))
    return generated + on_real


def _fuzz(runs: list[_Run], headers: dict[str, str]) -> FuzzReport:
    report = FuzzReport()
    for run in runs:
        _run(run.strategy, run.examples, run.label, headers, report)
    return report


def _run(
    strategy: Any, count: int, label: str, headers: dict[str, str], report: FuzzReport
) -> None:
    @settings(
        max_examples=count,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def send(case: Case[Any]) -> None:
        report.cases[label] += 1
        try:
            response = case.call_and_validate(headers=headers, checks=CHECKS, timeout=60)
            report.statuses[response.status_code] += 1
        except (AssertionError, FailureGroup) as exc:
            report.failures.append(f"FAILED {label}: {exc}\n  {case.as_curl_command(headers)}")

    try:
        send()
    except Unsatisfiable:
        # An operation without parameters or body has no invalid request to generate.
        report.cases[label] += 0


async def test_openapi_documents_the_errors_the_api_sends(live_api: str) -> None:
    async with httpx.AsyncClient(base_url=live_api) as client:
        document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            assert "400" in responses, (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)
            if (method, path) in CONFLICTS:
                assert "409" in responses, (method, path)
            for code, response in responses.items():
                if code.startswith(("4", "5")):
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorBody"), (method, path, code)
    assert set(CONFLICTS) <= {
        (method, path) for path, operations in document["paths"].items() for method in operations
    }


async def test_fuzzed_requests_get_documented_answers_and_no_server_error(
    live_api: str, worker: None, admin_headers: dict[str, str]
) -> None:
    """The worker runs on this loop, so the generated requests are sent from a thread."""
    started = time.monotonic()
    real_ids = await asyncio.to_thread(_real_ids, live_api, admin_headers)
    runs = _runs(live_api, real_ids)  # on this thread: see LAZY_MODULES
    report = await asyncio.to_thread(_fuzz, runs, admin_headers)
    wall_s = time.monotonic() - started
    sys.stdout.write("\n" + report.summary(wall_s) + "\n")
    assert report.cases, "the fuzz run generated no case"
    assert not report.failures, report.summary(wall_s)


def test_the_fuzz_run_reports_a_server_error() -> None:
    """The run fails on an app with a 5xx behind a valid input."""
    app = FastAPI()
    install_error_handlers(app)
    install_openapi(app)

    @app.get("/v1/ratio", responses={400: {"model": ErrorBody}})
    def ratio(
        parts: Annotated[int, Query(ge=0, le=10)],
    ) -> dict[str, float]:
        """Divides by the input: zero parts is a server error."""
        return {"ratio": 1 / parts}

    with serving(app, name="fuzz-uvicorn", log_level="critical") as base_url:
        report = _fuzz(_runs(base_url, {}), {})
    assert report.failures
    assert all("GET /v1/ratio" in failure for failure in report.failures)
    assert "Server error" in report.failures[0]
