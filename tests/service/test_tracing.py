"""Traces end to end: one trace from ``POST /v1/tickets`` through the outbox and the rule
engine, the Temporal workflow and its activity, to the BullMQ jobs they add; on the real
service, the real worker, Temporal dev server and Redis, with the spans in memory.

The process gets the service's tracer provider (``configure_tracing``) with an in-memory
exporter; the session's Temporal client, and so its worker, carries the service's tracing
interceptor as every client of the service does. A real ``protocol-lab serve`` with
``OTEL_EXPORTER_OTLP_ENDPOINT`` set exports its spans to a local OTLP/HTTP receiver."""

from __future__ import annotations

import io
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import serving
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.util._once import Once
from waiting import eventually, eventually_sync

from protocol_lab.domain.wire import WORKFLOW_TYPE
from service.app import create_app
from service.observability.logging import configure_logging
from service.observability.tracing import configure_tracing, job_traceparent, tracer
from service.settings import Settings
from service.stack import free_port

pytestmark = [pytest.mark.temporal, pytest.mark.redis]


@pytest.fixture(scope="module")
def spans(service_settings: Settings) -> Iterator[InMemorySpanExporter]:
    """Every span this process finishes while this module runs, in memory."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):  # installed before this module: left as it is
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        yield exporter
        exporter.shutdown()
        return
    assert configure_tracing(service_settings, "test", exporter=exporter)
    yield exporter
    exporter.shutdown()
    _uninstall_tracer_provider()


def _uninstall_tracer_provider() -> None:
    """No tracer provider again, so the tests after this module run untraced, as the service
    does by default. OpenTelemetry offers no public way; its own test utilities reset the same
    globals."""
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    proxy = tracer()
    if isinstance(proxy, trace.ProxyTracer):  # it had turned into the SDK's tracer
        proxy._real_tracer = None


def _caller() -> tuple[str, str]:
    """A made-up caller's trace and span ids (hex) and its ``traceparent`` header."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, f"00-{trace_id}-{span_id}-01"


def _of_trace(exporter: InMemorySpanExporter, trace_id: str) -> list[ReadableSpan]:
    return [
        s
        for s in exporter.get_finished_spans()
        if s.context is not None and format(s.context.trace_id, "032x") == trace_id
    ]


def _one(found: Sequence[ReadableSpan], name: str, **attributes: Any) -> ReadableSpan:
    matching = [
        s
        for s in found
        if s.name == name and all((s.attributes or {}).get(k) == v for k, v in attributes.items())
    ]
    assert len(matching) == 1, (name, attributes, sorted(s.name for s in found))
    return matching[0]


def _child_of(span: ReadableSpan, parent: ReadableSpan) -> bool:
    return (
        span.parent is not None
        and parent.context is not None
        and span.parent.span_id == parent.context.span_id
    )


def _tree(found: Sequence[ReadableSpan]) -> str:
    """The spans as an indented tree (for failure messages)."""
    ids = {s.context.span_id for s in found if s.context is not None}
    children: dict[int | None, list[ReadableSpan]] = {}
    for s in found:
        parent = s.parent.span_id if s.parent is not None and s.parent.span_id in ids else None
        children.setdefault(parent, []).append(s)
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for s in sorted(children.get(parent, []), key=lambda s: s.start_time or 0):
            attrs = s.attributes or {}
            lines.append(
                "  " * depth
                + s.name
                + (f" [{attrs['bullmq.job.name']}]" if "bullmq.job.name" in attrs else "")
            )
            if s.context is not None:
                walk(s.context.span_id, depth + 1)

    walk(None, 0)
    return "\n".join(lines)


def _descends_from(
    span: ReadableSpan, ancestor: ReadableSpan, found: Sequence[ReadableSpan]
) -> bool:
    """Whether ``ancestor`` is on the chain of parents of ``span`` among ``found``."""
    by_id = {s.context.span_id: s for s in found if s.context is not None}
    current: ReadableSpan | None = span
    while current is not None and current.parent is not None:
        if _child_of(current, ancestor):
            return True
        current = by_id.get(current.parent.span_id)
    return False


async def test_one_trace_from_the_request_to_the_jobs(
    spans: InMemorySpanExporter,
    api: httpx.AsyncClient,
    worker: None,
    read_headers: dict[str, str],
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    name = f"Traced {uuid.uuid4().hex[:8]}"
    definition = {
        "task_queue": "itsm-workflows",
        "description": "Add one audit job.",
        "category": "access",
        "steps": [
            {
                "id": "audit_it",
                "kind": "activity",
                "activity": "enqueue_job",
                "detail": "Auditing",
                "done": "Audited",
                "params": {"queue": "audit", "job": "traced"},
                "duration": {"dist": "fixed", "seconds": 1},
            }
        ],
    }
    defined = await api.post(
        f"/v1/workflow-definitions/{name}", headers=admin_headers, json=definition
    )
    assert defined.status_code == 201, defined.text
    created = await api.post(
        "/v1/automation/rules",
        headers=write_headers,
        json={
            "name": f"trace {name}",
            "trigger": "on_ticket_created",
            "conditions": {"title": name},
            "actions": [
                {"type": "start_workflow", "workflow_name": name, "task_queue": "itsm-workflows"},
                {"type": "send_notification", "recipient": "ops-team", "message": "traced"},
            ],
        },
    )
    assert created.status_code == 201, created.text
    rule = created.json()

    trace_id, traceparent = _caller()
    ticket = await api.post(
        "/v1/tickets",
        headers={**write_headers, "traceparent": traceparent},
        json={"title": name, "priority": "P3"},
    )
    assert ticket.status_code == 201, ticket.text

    def complete() -> list[ReadableSpan] | None:
        found = _of_trace(spans, trace_id)
        names = {s.name for s in found}
        jobs = {(s.name, (s.attributes or {}).get("bullmq.job.name")) for s in found}
        wanted_jobs = {
            ("send audit", "traced"),
            ("process audit", "traced"),
            ("process audit", "on_ticket_created"),
            ("send notification", "rule_notification"),
            ("process notification", "rule_notification"),
        }
        wanted = {
            "POST /v1/tickets",
            "outbox on_ticket_created",
            "rule execution",
            f"RunWorkflow:{WORKFLOW_TYPE}",
            "RunActivity:enqueue_job",
        }
        return found if wanted_jobs <= jobs and wanted <= names else None

    found = await eventually(complete, within_s=60)
    tree = _tree(found)

    server = _one(found, "POST /v1/tickets")
    assert server.kind is SpanKind.SERVER
    assert server.parent is not None
    assert server.parent.is_remote
    assert format(server.parent.span_id, "016x") == traceparent.split("-")[2]
    assert (server.attributes or {})["http.response.status_code"] == 201
    assert (server.attributes or {})["http.route"] == "/v1/tickets"

    # The outbox event, written by the endpoint (a span of the request's) and processed in the
    # API's background or by the worker's dispatcher.
    event = _one(found, "outbox on_ticket_created")
    assert event.kind is SpanKind.CONSUMER
    assert _descends_from(event, server, found), tree
    endpoint = _one(found, "fastapi.endpoint")
    assert _child_of(event, endpoint), tree
    assert _child_of(endpoint, server)
    execution = _one(found, "rule execution", **{"rule.id": rule["id"]})
    assert _child_of(execution, event), tree
    assert (execution.attributes or {})["rule.actions"] == 2

    # temporalio's interceptor: the client's StartWorkflow span travels in the workflow's
    # headers, and the workflow's spans (its run, the activities it schedules) are its children.
    started = _one(found, f"StartWorkflow:{WORKFLOW_TYPE}")
    assert _child_of(started, execution), tree
    run = _one(found, f"RunWorkflow:{WORKFLOW_TYPE}")
    assert _child_of(run, started), tree
    scheduled = _one(found, "StartActivity:enqueue_job")
    assert _child_of(scheduled, started), tree
    activity = _one(found, "RunActivity:enqueue_job")
    assert _child_of(activity, scheduled), tree

    # The workflow's job, added by its activity, run by the job runner.
    sent = _one(found, "send audit", **{"bullmq.job.name": "traced"})
    assert sent.kind is SpanKind.PRODUCER
    assert _child_of(sent, activity), tree
    processed = _one(found, "process audit", **{"bullmq.job.name": "traced"})
    assert processed.kind is SpanKind.CONSUMER
    assert _child_of(processed, sent), tree
    assert processed.status.status_code is not StatusCode.ERROR
    attributes = processed.attributes or {}
    assert attributes["messaging.system"] == "bullmq"
    assert attributes["messaging.message.id"] == (sent.attributes or {})["messaging.message.id"]

    # The rule's own notification job.
    notified = _one(found, "send notification")
    assert _child_of(notified, execution), tree
    assert _child_of(_one(found, "process notification"), notified)

    # The bookkeeping jobs of the event (its audit entry) continue the same trace.
    side = _one(found, "process audit", **{"bullmq.job.name": "on_ticket_created"})
    assert _descends_from(side, event, found), tree

    await api.delete(f"/v1/automation/rules/{rule['id']}", headers=admin_headers)


async def test_the_server_span_is_named_by_the_route_template(
    spans: InMemorySpanExporter, api: httpx.AsyncClient, read_headers: dict[str, str]
) -> None:
    trace_id, traceparent = _caller()
    r = await api.get(
        "/v1/tickets/TKT-does-not-exist", headers={**read_headers, "traceparent": traceparent}
    )
    assert r.status_code == 404, r.text
    server = _one(_of_trace(spans, trace_id), "GET /v1/tickets/{ticket_id}")
    assert server.kind is SpanKind.SERVER
    assert (server.attributes or {})["http.response.status_code"] == 404
    assert (server.attributes or {})["url.path"] == "/v1/tickets/TKT-does-not-exist"

    # Probes and scrapes are not traced; other requests without a caller's context start a
    # trace of their own.
    before = {id(s) for s in spans.get_finished_spans()}
    assert (await api.get("/healthz")).status_code == 200
    assert (await api.get("/v1/tickets", headers=read_headers)).status_code == 200
    fresh = [s for s in spans.get_finished_spans() if id(s) not in before]
    servers = [s for s in fresh if s.kind is SpanKind.SERVER]
    assert [s.name for s in servers] == ["GET /v1/tickets"]
    assert servers[0].parent is None


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """Put the root logger and uvicorn's loggers back as they were after the test."""
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access")
    saved = {
        name: (list(logging.getLogger(name).handlers), logging.getLogger(name).level)
        for name in names
    }
    propagate = {name: logging.getLogger(name).propagate for name in names}
    yield
    for name, (handlers, level) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate[name]


def test_log_lines_of_a_request_carry_its_trace_id(
    spans: InMemorySpanExporter,
    service_settings: Settings,
    read_headers: dict[str, str],
    restored_logging: None,
) -> None:
    out = io.StringIO()
    trace_id, traceparent = _caller()
    with serving(create_app(service_settings), name="tracing-api", log_level="info") as url:
        configure_logging(service_settings, stream=out)
        with httpx.Client(base_url=url, timeout=30) as client:
            r = client.get("/v1/tickets", headers={**read_headers, "traceparent": traceparent})
            assert r.status_code == 200, r.text
    access = [line for line in out.getvalue().splitlines() if "GET /v1/tickets" in line]
    assert access, out.getvalue()
    assert f"trace={trace_id}" in access[0]


def test_jobs_carry_the_context_as_bullmq_telemetry_metadata() -> None:
    traceparent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
    metadata = '{"traceparent": "' + traceparent + '"}'
    assert job_traceparent({"telemetry": {"metadata": metadata}}) == traceparent
    assert job_traceparent({"attempts": 5}) is None
    assert job_traceparent({"telemetry": {"metadata": "not json"}}) is None
    assert job_traceparent(None) is None


SERVER = ProtoSpan.SpanKind.SPAN_KIND_SERVER


class _Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP trace receiver: keeps each request's path and decoded spans."""

    received: list[tuple[str, ExportTraceServiceRequest]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.append((self.path, ExportTraceServiceRequest.FromString(body)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, ExportTraceServiceRequest]]]]:
    """A local OTLP/HTTP receiver: its base URL and what it received."""
    received: list[tuple[str, ExportTraceServiceRequest]] = []
    handler = type("Collector", (_Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, name="otlp-collector", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    thread.join(timeout=10)


def test_serve_exports_its_spans_over_otlp_when_an_endpoint_is_set(
    tmp_path: Path, collector: tuple[str, list[tuple[str, ExportTraceServiceRequest]]]
) -> None:
    endpoint, received = collector
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "STATE_DIR": str(tmp_path / "state"),
        # Nothing listens there: the API starts all the same (lazy Temporal client).
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "API_TOKENS": "otlp-test-token=read",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # milliseconds between the exporter's batches
    }
    for name in ("DATABASE_URL", "OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        env.pop(name, None)
    log_path = tmp_path / "serve.log"
    trace_id, traceparent = _caller()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "protocol_lab.cli", "serve"], env=env, stdout=log, stderr=log
        )
        try:
            url = f"http://127.0.0.1:{port}"

            def answered() -> bool:
                assert proc.poll() is None, log_path.read_text()
                try:
                    r = httpx.get(
                        f"{url}/v1/tickets",
                        headers={
                            "Authorization": "Bearer otlp-test-token",
                            "traceparent": traceparent,
                        },
                        timeout=5,
                    )
                except httpx.TransportError:
                    return False
                assert r.status_code == 200, r.text
                return True

            eventually_sync(answered, within_s=60, every_s=0.2)

            def exported() -> tuple[str, str, str] | None:
                for path, request in list(received):
                    for resource_spans in request.resource_spans:
                        service = {
                            a.key: a.value.string_value for a in resource_spans.resource.attributes
                        }.get("service.name", "")
                        for scope_spans in resource_spans.scope_spans:
                            for span in scope_spans.spans:
                                if span.trace_id.hex() == trace_id and span.kind == SERVER:
                                    return path, service, span.name
                return None

            path, service, name = eventually_sync(exported, within_s=30)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
    assert (path, service, name) == ("/v1/traces", "protocol-lab-api", "GET /v1/tickets")


def test_without_an_endpoint_nothing_is_installed(service_settings: Settings) -> None:
    before = trace.get_tracer_provider()
    off = service_settings.model_copy(
        update={"otel_exporter_otlp_endpoint": None, "otel_exporter_otlp_traces_endpoint": None}
    )
    assert configure_tracing(off, "api") is False
    assert trace.get_tracer_provider() is before


def test_the_endpoint_names_where_traces_go() -> None:
    from service.observability.tracing import _traces_endpoint

    base = Settings(
        otel_exporter_otlp_endpoint="http://collector:4318/",
        otel_exporter_otlp_traces_endpoint=None,
    )
    assert _traces_endpoint(base) == "http://collector:4318/v1/traces"
    full = base.model_copy(update={"otel_exporter_otlp_traces_endpoint": "http://other/traces"})
    assert _traces_endpoint(full) == "http://other/traces"
    none = base.model_copy(update={"otel_exporter_otlp_endpoint": None})
    assert _traces_endpoint(none) is None
