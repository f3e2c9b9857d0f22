"""What observability costs (printed, never asserted).

1. Tracing off vs on: two `keel serve` processes side by side on the same fake OpenAI stream (its own
   process), one with tracing off and one exporting every span over OTLP/HTTP to a local receiver (a thread
   of this process that answers each export); answers alternate between them, one websocket each, retrieval
   on; each server's CPU per streamed token over the whole run (/proc) and its TTFT p50/p95. Both servers
   keep their metrics: they are always on.
2. Metrics: the telemetry one answer reports (its model call, settled usage, retrieval, GraphQL operation),
   timed in this process, set against the CPU per answer measured in 1.

Run: ./keel test benchmarks -k observability -s   (BENCH_ANSWERS=40 per server)
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import CollectorRegistry

from benchmarks.test_conversation_bench import (
    DELAY,
    TOKENS,
    _account_with_documents,
    _cpu_seconds,
    _keel_serve,
    _start,
    keel_socket,
    keel_stream,
    pct,
)
from src.adapters.telemetry.prometheus import PrometheusTelemetry
from src.adapters.telemetry.tracing import NoTracing
from src.ports.models import Usage
from tests.conftest import healthy, wait_for
from tests.net import free_port


class _Accept(BaseHTTPRequestHandler):
    exports = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        _Accept.exports += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.timeout(1800)
def test_tracing_and_metrics_cost_per_streamed_token(settings, test_env):
    samples, fake_port = int(os.environ.get("BENCH_ANSWERS", "40")), free_port()
    receiver = ThreadingHTTPServer(("127.0.0.1", free_port()), _Accept)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    env = {**test_env, "KEEL_OPENAI_API_KEY": "sk-test-keel", "KEEL_OPENAI_BASE_URL": f"http://127.0.0.1:{fake_port}/v1",
           "KEEL_LOG_LEVEL": "warning", "KEEL_CHAT_RETRIEVAL_K": "6"}
    traced_env = {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.server_port}"}
    fake = _start([sys.executable, "-m", "benchmarks.fake_provider_server", str(fake_port), str(TOKENS), str(DELAY)],
                  env)
    try:
        wait_for(lambda: healthy(f"http://127.0.0.1:{fake_port}", "/v1/models"), timeout=60, interval=0.3)
        with _keel_serve(env) as (plain_base, plain_pid), _keel_serve(traced_env) as (traced_base, traced_pid):
            plain = asyncio.run(_account_with_documents(settings, plain_base, with_documents=True))
            traced = asyncio.run(_account_with_documents(settings, traced_base, with_documents=True))
            results = asyncio.run(_alternate([(plain_base, plain_pid, *plain), (traced_base, traced_pid, *traced)],
                                             samples))
    finally:
        fake.terminate()
        fake.wait(timeout=30)
        receiver.shutdown()
    (off_cpu, off_tokens, off_ttft), (on_cpu, on_tokens, on_ttft) = results
    off_per_token, on_per_token = off_cpu / off_tokens, on_cpu / on_tokens
    print(f"\n{samples} answers each of {TOKENS} tokens, alternating, load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores; {_Accept.exports} OTLP exports received")
    print(f"tracing off: {off_per_token * 1e6:.0f} µs CPU per token (set-up, retrieval and storage included); "
          f"TTFT p50 {statistics.median(off_ttft) * 1000:.1f} ms, p95 {pct(off_ttft, 95):.1f} ms")
    print(f"tracing on (OTLP/HTTP): {on_per_token * 1e6:.0f} µs CPU per token; "
          f"TTFT p50 {statistics.median(on_ttft) * 1000:.1f} ms, p95 {pct(on_ttft, 95):.1f} ms")
    print(f"  tracing on / off: CPU per token x{on_per_token / off_per_token:.3f}; added TTFT p50 "
          f"{(statistics.median(on_ttft) - statistics.median(off_ttft)) * 1000:.2f} ms")
    per_answer = _metrics_cpu_per_answer()
    print(f"metrics: {per_answer * 1e6:.1f} µs CPU per answer = {per_answer / (off_per_token * TOKENS) * 100:.2f} % "
          f"of an answer's CPU ({TOKENS} tokens)")


async def _alternate(servers: list[tuple[str, int, str, str]], samples: int) -> list[tuple[float, int, list]]:
    """One answer from each server in turn (both see the same machine at the same time); each server's CPU
    is counted over the measured answers only."""
    sockets = [keel_socket(base.replace("http://", "ws://") + "/graphql", token) for base, _, token, _ in servers]
    opened = [await socket.__aenter__() for socket in sockets]
    try:
        for _ in range(3):  # warm caches, connections and the embedding model
            for ws, (_, _, _, workspace) in zip(opened, servers, strict=True):
                await keel_stream(ws, workspace)
        before = [_cpu_seconds(pid) for _, pid, _, _ in servers]
        ttfts, tokens = [[] for _ in servers], [0 for _ in servers]
        for _ in range(samples):
            for index, (ws, (_, _, _, workspace)) in enumerate(zip(opened, servers, strict=True)):
                ttft, gaps = await keel_stream(ws, workspace)
                ttfts[index].append(ttft)
                tokens[index] += len(gaps) + 1
        cpu = [_cpu_seconds(pid) - start for (_, pid, _, _), start in zip(servers, before, strict=True)]
    finally:
        for socket in sockets:
            await socket.__aexit__(None, None, None)
    return [(cpu[i], tokens[i], ttfts[i]) for i in range(len(servers))]


def _metrics_cpu_per_answer(answers: int = 20_000) -> float:
    telemetry = PrometheusTelemetry(CollectorRegistry(), NoTracing())
    started = time.process_time()
    for _ in range(answers):
        telemetry.model_call("openai", "gpt-4o-mini", "rag_answer@1", "ok", 1.5, 0.2)
        telemetry.model_usage("openai", "gpt-4o-mini", "rag_answer@1", Usage(900, 40), 0.0004)
        telemetry.retrieval("hybrid", 0.01, 60, 6)
    return (time.process_time() - started) / answers
