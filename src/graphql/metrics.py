"""GraphQL operations measured: latency and outcome by root field and operation type (Prometheus), and a
span per operation, current while it runs, so use cases, SQL statements and jobs nest under it. The label
is the root field (bounded by the schema), not the client's operation name (anyone can send any); the same
name is bound to the operation's log context. No query text or argument goes into a span."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from graphql import OperationDefinitionNode
from src.ports.context import bind_context
from src.ports.telemetry import Telemetry

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class GraphQLMetrics:
    def __init__(self, registry: CollectorRegistry, telemetry: Telemetry) -> None:
        self.telemetry = telemetry  # its spans: one per operation, the current one while it runs
        self.latency = Histogram("keel_graphql_operation_seconds", "Queries and mutations, parse to result",
                                 ["operation", "type"], buckets=BUCKETS, registry=registry)
        self.operations = Counter("keel_graphql_operations", "Operations by outcome (ok, error: any error in "
                                  "the result)", ["operation", "type", "outcome"], registry=registry)
        self.websockets = Gauge("keel_websockets_open", "Websockets this process holds", multiprocess_mode="livesum",
                                registry=registry)
        self.root_fields: set[str] = set()  # filled once the schema is built

    def extension(self) -> OperationMetrics:
        return OperationMetrics(self)


class OperationMetrics(SchemaExtension):
    def __init__(self, metrics: GraphQLMetrics) -> None:
        super().__init__()
        self._metrics = metrics

    def on_execute(self) -> Iterator[None]:
        # parsed and valid by now: the rest of the operation's log lines and jobs carry its root field
        bind_context(operation=root_field(self.execution_context, self._metrics.root_fields))
        yield

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        with self._metrics.telemetry.span("GraphQL operation", {"component": "graphql"}) as span:
            yield
            context = self.execution_context
            kind, operation = operation_type(context), root_field(context, self._metrics.root_fields)
            result = context.result
            outcome = "error" if result is None or getattr(result, "errors", None) else "ok"
            span.set("graphql.operation.type", kind)
            span.set("graphql.operation.name", operation)
            if outcome == "error":
                span.fail("graphql_error")
        self._metrics.operations.labels(operation, kind, outcome).inc()
        if kind != "subscription":  # a subscription lasts as long as the client listens
            self._metrics.latency.labels(operation, kind).observe(time.perf_counter() - started)


def operation_type(context: ExecutionContext) -> str:
    try:
        return context.operation_type.value
    except RuntimeError:  # no operation could be found in the document
        return "unknown"


def root_field(context: ExecutionContext, known: set[str]) -> str:
    """The operation's first root field when the schema has it; "other" / "invalid" otherwise (bounded)."""
    document, name = context.graphql_document, context.operation_name
    for definition in document.definitions if document else ():
        if isinstance(definition, OperationDefinitionNode) and (name is None or (
                definition.name is not None and definition.name.value == name)):
            selection = definition.selection_set.selections[0] if definition.selection_set.selections else None
            field = getattr(getattr(selection, "name", None), "value", None)
            return field if field in known else "other"
    return "invalid"
