"""GraphQL operations as Prometheus metrics: latency and outcome by root field and operation type. The
label is the root field (bounded by the schema), not the client's operation name (anyone can send any);
the same name is bound to the operation's log context."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from strawberry.extensions import SchemaExtension

from graphql import OperationDefinitionNode
from src.ports.context import bind_context

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class GraphQLMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.latency = Histogram("keel_graphql_operation_seconds", "Queries and mutations, parse to result",
                                 ["operation", "type"], buckets=BUCKETS, registry=registry)
        self.operations = Counter("keel_graphql_operations", "Operations by outcome (ok, error: any error in "
                                  "the result)", ["operation", "type", "outcome"], registry=registry)
        self.websockets = Gauge("keel_websockets_open", "Websockets this process holds", registry=registry)
        self.root_fields: set[str] = set()  # filled once the schema is built

    def extension(self) -> OperationMetrics:
        return OperationMetrics(self)


class OperationMetrics(SchemaExtension):
    def __init__(self, metrics: GraphQLMetrics) -> None:
        super().__init__()
        self._metrics = metrics

    def on_execute(self) -> Iterator[None]:
        # parsed and valid by now: the rest of the operation's log lines and jobs carry its root field
        bind_context(operation=self._root_field(self.execution_context.operation_name))
        yield

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        try:
            kind = context.operation_type.value
        except RuntimeError:  # no operation could be found in the document
            kind = "unknown"
        operation = self._root_field(context.operation_name)
        result = context.result
        outcome = "error" if result is None or getattr(result, "errors", None) else "ok"
        self._metrics.operations.labels(operation, kind, outcome).inc()
        if kind != "subscription":  # a subscription lasts as long as the client listens
            self._metrics.latency.labels(operation, kind).observe(time.perf_counter() - started)

    def _root_field(self, name: str | None) -> str:
        document = self.execution_context.graphql_document
        for definition in document.definitions if document else ():
            if isinstance(definition, OperationDefinitionNode) and (name is None or (
                    definition.name is not None and definition.name.value == name)):
                selection = definition.selection_set.selections[0] if definition.selection_set.selections else None
                field = getattr(getattr(selection, "name", None), "value", None)
                return field if field in self._metrics.root_fields else "other"
        return "invalid"
