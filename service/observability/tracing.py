"""Traces: one OpenTelemetry trace from an API request through the rule engine, the Temporal
workflow and its activities to the BullMQ jobs they add.

Off by default: without ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``)
nothing is installed and every span below is OpenTelemetry's no-op one. With it,
:func:`configure_tracing` (called where each process sets up its logging) installs an SDK tracer
provider that exports in batches over OTLP/HTTP, named ``protocol-lab-<process>`` (``api``,
``worker``) unless ``OTEL_SERVICE_NAME`` says otherwise; the SDK's own variables
(``OTEL_TRACES_SAMPLER``, ``OTEL_EXPORTER_OTLP_HEADERS``, ...) apply.

How the context travels, always as a W3C ``traceparent``:

- the API: FastAPI's own telemetry (:func:`api_telemetry`) opens a server span per request,
  named ``<METHOD> <route template>``, continuing the caller's ``traceparent`` header;
- the outbox: an event stores the ``traceparent`` current when it was written (the request's
  span, or the rule execution whose ticket update caused it); the dispatcher continues it
  (:func:`continued_span`: ``outbox <kind>``, and a ``rule execution`` span per rule fired);
- Temporal: every client carries temporalio's ``TracingInterceptor``
  (:func:`temporal_interceptors`), so a workflow start takes the context in its headers and the
  worker's workflow (``RunWorkflow:<type>``) and activity (``RunActivity:<name>``) spans join;
- BullMQ: a job added in a trace carries it in its options (``telemetry.metadata``, where
  BullMQ's own telemetry keeps it; :func:`job_telemetry`), and the job runner's span
  (``process <queue>``) continues it (:func:`job_traceparent`).

Log lines made while a span is current show its trace id (``service.observability.logging``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Mapping, MutableMapping
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

if TYPE_CHECKING:
    from fastapi.telemetry import TelemetryConfig
    from opentelemetry.sdk.trace.export import SpanExporter
    from temporalio.client import Interceptor

    from service.settings import Settings

__all__ = [
    "INSTRUMENTATION",
    "UNTRACED_PATHS",
    "api_telemetry",
    "configure_tracing",
    "continued_span",
    "continued_span_async",
    "current_traceparent",
    "job_telemetry",
    "job_traceparent",
    "record_failure",
    "temporal_interceptors",
    "tracer",
]

INSTRUMENTATION: Final = "protocol-lab"
_PROPAGATOR: Final = TraceContextTextMapPropagator()
_TRACEPARENT: Final = "traceparent"
# Probes and scrapes: frequent, and nothing to follow in a trace.
UNTRACED_PATHS: Final = frozenset({"/healthz", "/readyz", "/metrics"})


# Made once: before a provider is installed it is OpenTelemetry's proxy, which turns into the
# provider's tracer as soon as one is.
_TRACER: Final = trace.get_tracer(INSTRUMENTATION)


def tracer() -> trace.Tracer:
    """The service's tracer (a no-op one until :func:`configure_tracing` installed a provider)."""
    return _TRACER


def _traces_endpoint(settings: Settings) -> str | None:
    if settings.otel_exporter_otlp_traces_endpoint:
        return settings.otel_exporter_otlp_traces_endpoint
    if settings.otel_exporter_otlp_endpoint:
        # As the OTLP/HTTP exporter does with the generic variable: traces under /v1/traces.
        return settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
    return None


def configure_tracing(
    settings: Settings, process: str, *, exporter: SpanExporter | None = None
) -> bool:
    """Install this process's tracer provider when traces are wanted; return whether they are.

    Traces are wanted when an OTLP endpoint is configured (spans exported in batches over
    OTLP/HTTP) or when ``exporter`` is given (spans handed to it one by one, as tests do). The
    service name is ``OTEL_SERVICE_NAME`` or ``protocol-lab-<process>``. OpenTelemetry accepts
    one provider per process: a second call changes nothing and returns True.
    """
    endpoint = _traces_endpoint(settings)
    if endpoint is None and exporter is None:
        return False
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return True
    name = settings.otel_service_name or f"protocol-lab-{process}"
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    return True


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span; None outside a (recorded) trace."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get(_TRACEPARENT)


def _context_of(traceparent: str | None) -> Context | None:
    """The context a stored ``traceparent`` names (None: the current one stays the parent)."""
    return _PROPAGATOR.extract({_TRACEPARENT: traceparent}) if traceparent else None


@contextmanager
def continued_span(
    name: str,
    traceparent: str | None = None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Iterator[Span]:
    """A current span named ``name``: a child of ``traceparent`` when one is given (work that
    another process or an earlier moment began), else of the current span."""
    with tracer().start_as_current_span(
        name, context=_context_of(traceparent), kind=kind, attributes=attributes
    ) as span:
        yield span


@asynccontextmanager
async def continued_span_async(
    name: str,
    traceparent: str | None = None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> AsyncIterator[Span]:
    """:func:`continued_span` for an ``async with`` beside other asynchronous contexts."""
    with continued_span(name, traceparent, kind=kind, attributes=attributes) as span:
        yield span


def record_failure(span: Span, failure: BaseException) -> None:
    """Mark ``span`` failed by ``failure`` (for work that catches its error to decide later)."""
    span.record_exception(failure)
    span.set_status(Status(StatusCode.ERROR, f"{type(failure).__name__}: {failure}"))


def temporal_interceptors() -> list[Interceptor]:
    """The Temporal client's interceptors: temporalio's tracing one (workers built on the client
    inherit it), which propagates the current context into workflows and activities."""
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(tracer())]


def job_telemetry() -> dict[str, str] | None:
    """The ``telemetry`` option of a job added now: the current context as BullMQ's telemetry
    carries it (a JSON object of W3C headers in ``metadata``); None outside a trace."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return {"metadata": json.dumps(carrier)} if carrier else None


def job_traceparent(opts: Mapping[str, Any] | None) -> str | None:
    """The ``traceparent`` a job's options carry (see :func:`job_telemetry`), if any."""
    telemetry = (opts or {}).get("telemetry")
    metadata = telemetry.get("metadata") if isinstance(telemetry, Mapping) else None
    if not isinstance(metadata, str):
        return None
    try:
        carrier = json.loads(metadata)
    except ValueError:
        return None
    found = carrier.get(_TRACEPARENT) if isinstance(carrier, dict) else None
    return found if isinstance(found, str) else None


def api_telemetry() -> TelemetryConfig:
    """FastAPI's own OpenTelemetry settings for the API: a server span per request, named
    ``<METHOD> <route template>`` and continuing the caller's ``traceparent``, with spans of its
    dependencies, endpoint, serialization and background tasks; none for probes and scrapes
    (:data:`UNTRACED_PATHS`). FastAPI traces only once a tracer provider is installed, and
    sets up no exporter of its own: :func:`configure_tracing` is the one set-up."""
    return {"exclude": _untraced, "auto_configure": False, "metrics": False, "logs": False}


def _untraced(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in UNTRACED_PATHS
