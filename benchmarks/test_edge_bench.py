"""The edge's cost: what a rate-limit check costs per request (Postgres and Redis stores, and end to end
through GraphQL with limits on vs off, interleaved), and whether concurrent callers overshoot a limit.

    ./keel test benchmarks/test_edge_bench.py -s       (BENCH_CHECKS, BENCH_CALLERS)
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid

import pytest

from src.adapters.postgres.rate_limits import PgRateLimiter
from src.adapters.redis.rate_limits import RedisRateLimiter
from src.container import build_container, shutdown
from src.main import create_app
from src.ports.edge import Quota
from tests.conftest import asgi_client

CHECKS = int(os.environ.get("BENCH_CHECKS", "2000"))
CALLERS = int(os.environ.get("BENCH_CALLERS", "200"))


def _us(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return f"p50 {statistics.median(ordered) * 1e6:7.0f} µs  p95 {p95 * 1e6:7.0f} µs  mean " \
           f"{statistics.fmean(ordered) * 1e6:7.0f} µs"


async def _take_times(limiter, checks: int) -> list[float]:
    quota = Quota(f"bench:{uuid.uuid4()}", 10**9, 60, "bench")
    samples = []
    for _ in range(checks):
        started = time.perf_counter()
        await limiter.take(quota, 1)
        samples.append(time.perf_counter() - started)
    return samples


async def _overshoot(limiter, callers: int, limit: int) -> tuple[int, float]:
    quota = Quota(f"bench:{uuid.uuid4()}", limit, 3600, "bench")  # an hour: nothing refills during the burst
    started = time.perf_counter()
    decisions = await asyncio.gather(*(limiter.take(quota, 1) for _ in range(callers)))
    return sum(d.allowed for d in decisions), time.perf_counter() - started


@pytest.mark.parametrize("store", ["postgres", "redis"])
def test_limiter_cost_per_check_and_overshoot_under_concurrency(store, settings, request):
    async def run() -> str:
        services = build_container(settings)
        limiter = (RedisRateLimiter(request.getfixturevalue("redis_url")) if store == "redis"
                   else PgRateLimiter(services.engine()))
        try:
            await _take_times(limiter, 50)  # connections made, statements prepared
            cost = _us(await _take_times(limiter, CHECKS))
            limit = CALLERS // 2
            admitted, seconds = await _overshoot(limiter, CALLERS, limit)
        finally:
            await shutdown(services)
        return (f"\n[{store}] one check, {CHECKS} in a row: {cost}\n"
                f"[{store}] {CALLERS} concurrent callers on a limit of {limit}: {admitted} admitted "
                f"(admitted/allowed {admitted / limit:.2f}) in {seconds * 1000:.0f} ms")

    report = asyncio.run(run())
    print(report)
    assert "admitted" in report


def test_graphql_request_with_limits_on_vs_off(settings):
    """The same cheap query alternately through an app with the limits on and one with them off: the
    difference is what the edge adds to a request (the caller's quota in Postgres, the process's in memory)."""
    async def run() -> str:
        on = settings.model_copy(update={"rate_anonymous_per_minute": 10**9, "rate_process_per_second": 10**9})
        containers = [build_container(on), build_container(settings)]
        apps = [create_app(on, containers[0]), create_app(settings, containers[1])]
        samples: dict[int, list[float]] = {0: [], 1: []}
        try:
            async with asgi_client(apps[0]) as with_limits, asgi_client(apps[1]) as without:
                clients = [with_limits, without]
                for round_ in range(CHECKS // 2 + 50):
                    for index in (round_ % 2, 1 - round_ % 2):  # interleaved, alternating which goes first
                        started = time.perf_counter()
                        response = await clients[index].post("/graphql", json={"query": "{ plans { name } }"})
                        if round_ >= 50:
                            samples[index].append(time.perf_counter() - started)
                        assert response.status_code == 200
        finally:
            for services in containers:
                await shutdown(services)
        added = statistics.median(samples[0]) - statistics.median(samples[1])
        return (f"\nGraphQL `{{ plans {{ name }} }}` through the ASGI app, {len(samples[0])} each, interleaved:\n"
                f"  limits on : {_us(samples[0])}\n  limits off: {_us(samples[1])}\n"
                f"  added by the edge at p50: {added * 1e6:.0f} µs "
                f"({statistics.median(samples[0]) / statistics.median(samples[1]):.2f}x); "
                f"load average {os.getloadavg()[0]:.2f}")

    report = asyncio.run(run())
    print(report)
    assert "added" in report
