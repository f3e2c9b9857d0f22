"""Foundation figures (printed, never asserted): request latency through the ASGI app, and the time
from enqueueing a job to a worker process having written its result (Postgres broker).

Run: ./keel test benchmarks -k foundation
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid

import httpx
import pytest

from src.container import build_container, shutdown
from src.main import create_app


@pytest.fixture
def app_runner(settings):
    """A private event loop + app, so the synchronous benchmark fixture can drive async requests."""
    loop = asyncio.new_event_loop()
    services = build_container(settings)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings, services)), base_url="http://b")
    yield lambda coroutine_factory: loop.run_until_complete(coroutine_factory(client))
    loop.run_until_complete(client.aclose())
    loop.run_until_complete(shutdown(services))
    loop.close()


def test_healthz_latency(benchmark, app_runner):
    benchmark(app_runner, lambda client: client.get("/healthz"))


def test_graphql_query_latency(benchmark, app_runner):
    query = {"query": "query($id: ID!) { workerProbe(id: $id) { __typename } }", "variables": {"id": str(uuid.uuid4())}}
    benchmark(app_runner, lambda client: client.post("/graphql", json=query))


def test_job_round_trip_through_a_worker_process(settings, worker_process):
    async def measure(count: int) -> list[float]:
        services = build_container(settings)
        request, get = services.request_worker_probe(), services.get_worker_probe()
        latencies = []
        for _ in range(count):
            started = time.perf_counter()
            probe = await request.execute()
            while not (await get.execute(probe.id)).done:
                await asyncio.sleep(0.005)
            latencies.append(time.perf_counter() - started)
        await shutdown(services)
        return latencies

    latencies = asyncio.run(measure(5))  # warm-up: worker boot, connections
    latencies = asyncio.run(measure(50))
    quantiles = statistics.quantiles(latencies, n=20)
    print(f"\njob round-trip (enqueue -> worker -> DB, 5 ms polling), n=50: "
          f"p50 {statistics.median(latencies) * 1000:.1f} ms, p95 {quantiles[18] * 1000:.1f} ms")
