"""Traces: one per GraphQL operation with retrieval, embedding, SQL and model-call spans under it (captured in
process), and over real OTLP/HTTP from `keel serve` and a worker to a local receiver that decodes the
protobuf — the ingestion job's span joins the upload's trace."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from src.core.knowledge.documents import INGEST_JOB
from tests.api.test_conversation import GLACIERS, answer_of, chat, with_providers
from tests.conftest import asgi_client, graphql, keel_app, keel_serve, signed_up, start_worker, stop_worker, wait_for
from tests.conversation_helpers import ids, ready_documents
from tests.net import free_port

SEARCH = """query($w: ID!, $q: String!) { search(workspaceId: $w, query: $q) { __typename } }"""


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """This process's spans, in memory (the SDK's provider is process-wide: set once)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


def tree(finished) -> dict:
    return {span.context.span_id: span for span in finished}


def ancestors(span, by_id: dict) -> list[str]:
    names = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


async def test_an_operation_is_one_trace_with_retrieval_sql_and_model_spans(settings, fakes, spans):
    configured = with_providers(settings, fakes)
    async with keel_app(configured, tracing=True) as app, asgi_client(app) as client:
        account = await signed_up(client)
        _, workspace_id = ids(account)
        await ready_documents(app.state.container, workspace_id, GLACIERS)
        spans.clear()
        await graphql(client, SEARCH, token=account["accessToken"], w=str(workspace_id), q="fjords")
        searched = spans.get_finished_spans()
        by_id = tree(searched)
        retrieval = next(span for span in searched if span.name == "retrieval")
        assert ancestors(retrieval, by_id) == ["GraphQL operation"]
        operation = by_id[retrieval.parent.span_id]
        assert operation.attributes["graphql.operation.name"] == "search"
        assert "query" not in operation.attributes  # no query text (it may hold secrets)
        assert any(span.name.startswith("embeddings ") and ancestors(span, by_id)[0] == "retrieval"
                   for span in searched)
        sql = [span for span in searched if "retrieval" in ancestors(span, by_id) and span.attributes.get(
            "db.system", span.attributes.get("db.system.name")) == "postgresql"]
        assert sql and all(span.context.trace_id == operation.context.trace_id for span in sql)

        spans.clear()
        message = answer_of(await chat(app, account["accessToken"], str(workspace_id), "How do fjords form?"))
        chatted = spans.get_finished_spans()
        by_id = tree(chatted)
        model = next(span for span in chatted if span.name == "chat gpt-4o-mini")
        assert model.attributes["gen_ai.provider.name"] == "openai"
        assert model.attributes["gen_ai.usage.output_tokens"] == message["completionTokens"]
        assert model.attributes["keel.template"] == "rag_answer@1"
        assert ancestors(model, by_id)[-1] == "GraphQL operation"
        retrieval = next(span for span in chatted if span.name == "retrieval")
        assert retrieval.context.trace_id == model.context.trace_id


class Receiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP trace receiver: decodes each protobuf ExportTraceServiceRequest into (service, span)."""

    received: list[tuple[str, object]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource in request.resource_spans:
            service = next(a.value.string_value for a in resource.resource.attributes if a.key == "service.name")
            for scope in resource.scope_spans:
                self.received.extend((service, span) for span in scope.spans)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_an_uploads_ingestion_job_joins_its_trace_over_otlp(test_env):
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {**test_env, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_port}",
           "OTEL_BSP_SCHEDULE_DELAY": "200"}
    try:
        with keel_serve(env) as (base, _):
            worker = start_worker(env)
            try:
                with httpx.Client(base_url=base, timeout=30) as http:
                    def call(query: str, token: str | None = None, **variables) -> dict:
                        sent = {"authorization": f"Bearer {token}"} if token else {}
                        return http.post("/graphql", json={"query": query, "variables": variables},
                                         headers=sent).json()["data"]

                    account = call("mutation($e: String!) { signUp(email: $e, password: \"a long passphrase 42\") "
                                   "{ ... on AuthPayload { accessToken user { workspaces { id } } } } }",
                                   e=f"t-{uuid.uuid4().hex[:8]}@example.com")["signUp"]
                    token, workspace = account["accessToken"], account["user"]["workspaces"][0]["id"]
                    call("mutation($w: ID!) { uploadDocuments(workspaceId: $w, documents: [{title: \"F\", "
                         "text: \"Glaciers carve fjords.\"}]) { __typename } }", token, w=workspace)

                    def upload_and_its_job():
                        upload = next((span for service, span in Receiver.received if service == "keel-api"
                                       and span.name == "GraphQL operation" and any(
                                           a.key == "graphql.operation.name"
                                           and a.value.string_value == "uploadDocuments" for a in span.attributes)),
                                      None)
                        job = upload and next(((service, span) for service, span in Receiver.received
                                               if span.name == f"job {INGEST_JOB}"
                                               and span.trace_id == upload.trace_id), None)
                        return job and (upload, job)

                    # other tests' leftover jobs may run first: the upload's own job is the one in its trace
                    upload, (service, job) = wait_for(upload_and_its_job, timeout=120, interval=0.3)
            finally:
                stop_worker(worker)
    finally:
        server.shutdown()
    assert service == "keel-worker" and job.parent_span_id == upload.span_id
    in_job = [span for _, span in Receiver.received if span.trace_id == job.trace_id and span.name.startswith(
        "embeddings ")]
    assert in_job  # the worker's embedding of the document is in the same trace
