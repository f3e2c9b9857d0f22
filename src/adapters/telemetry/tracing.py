"""Tracing with OpenTelemetry. Off unless the standard variables ask for it (Settings.tracing_on:
OTEL_TRACES_EXPORTER=otlp or console, or an OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT); then spans go over
OTLP/HTTP in batches, configured by the OTEL_* variables (endpoint, headers, service name, sampler). Off,
every span is one shared no-op object: nothing is allocated or timed."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext

from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.trace import Status, StatusCode

from src.ports.context import context_of, current_context
from src.ports.telemetry import Attribute


def configure_tracing(service_name: str) -> None:
    """Once per process: the SDK's provider with a batching exporter (kept when one is already set, e.g. by
    a test or an auto-instrumentation agent)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME",
                                                                                       service_name)}))
    if os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


def instrument_database(engine) -> None:
    """A span per SQL statement, under the span that runs it. The instrumentation's engine tracer is attached
    to this engine only (its instrumentor works once per process, and a process may build several)."""
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import get_meter

    connections = get_meter("keel").create_up_down_counter("db.client.connections.usage")
    EngineTracer(trace.get_tracer("keel.sql"), engine.sync_engine, connections)


def trace_ids(span: trace.Span) -> dict[str, str]:
    """The span's ids for log lines, and its W3C traceparent for the jobs it makes (their spans join it)."""
    carrier: dict[str, str] = {}
    inject(carrier, context=trace.set_span_in_context(span))
    found = span.get_span_context()
    return {"trace_id": format(found.trace_id, "032x"), "span_id": format(found.span_id, "016x"),
            "traceparent": carrier.get("traceparent", "")}


class OtelSpan:
    __slots__ = ("_span",)

    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def set(self, key: str, value: Attribute) -> None:
        self._span.set_attribute(key, value)

    def fail(self, error_type: str) -> None:
        self._span.set_attribute("error.type", error_type)
        self._span.set_status(Status(StatusCode.ERROR))

    def end(self) -> None:
        self._span.end()


class OtelTracing:
    def __init__(self) -> None:
        self._tracer = trace.get_tracer("keel")

    def start_span(self, name: str, attributes: Mapping[str, Attribute] | None = None) -> OtelSpan:
        return OtelSpan(self._tracer.start_span(name, attributes=attributes))

    @contextmanager
    def span(self, name: str, attributes: Mapping[str, Attribute] | None = None,
             parent: str | None = None) -> Iterator[OtelSpan]:
        continued = extract({"traceparent": parent}) if parent else None
        with self._tracer.start_as_current_span(name, context=continued, attributes=attributes) as span, \
                context_of({**current_context(), **trace_ids(span)}):
            yield OtelSpan(span)


class NoSpan:
    __slots__ = ()

    def set(self, key: str, value: Attribute) -> None:
        pass

    def fail(self, error_type: str) -> None:
        pass

    def end(self) -> None:
        pass


NO_SPAN = NoSpan()


class NoTracing:
    _block = nullcontext(NO_SPAN)  # reusable: entering it allocates nothing

    def start_span(self, name: str, attributes: Mapping[str, Attribute] | None = None) -> NoSpan:
        return NO_SPAN

    def span(self, name: str, attributes: Mapping[str, Attribute] | None = None,
             parent: str | None = None) -> nullcontext[NoSpan]:
        return self._block
