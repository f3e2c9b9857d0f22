"""Webhook figures (printed, never asserted): events/s and latency p50/p95 through the ASGI app with
signature verification, for distinct events and under 10x duplicate delivery (the duplicates arriving
concurrently, as Stripe's retries and parallel deliveries do).

Run: ./keel test benchmarks -k billing -s
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from datetime import UTC, datetime

import httpx

from benchmarks.test_conversation_bench import _cpu_seconds, _keel_serve
from src.container import build_container, shutdown
from src.main import create_app
from src.ports.identity import Workspace
from tests.conftest import asgi_client
from tests.fakes.stripe_api import event, sign, subscription_object

SECRET = "whsec_bench"
EVENTS = 400
CONCURRENCY = 8


def summary(latencies: list[float], wall: float, requests: int, events: int) -> str:
    cuts = statistics.quantiles(latencies, n=20)
    return (f"{requests / wall:.0f} requests/s, {events / wall:.0f} distinct events/s, "
            f"p50 {statistics.median(latencies) * 1000:.1f} ms, p95 {cuts[18] * 1000:.1f} ms (n={requests})")


async def _deliver_all(client, payloads: list[bytes], concurrency: int) -> tuple[list[float], float, list[str]]:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for payload in payloads:
        queue.put_nowait(payload)
    latencies, outcomes = [], []

    async def sender() -> None:
        while not queue.empty():
            payload = queue.get_nowait()
            started = time.perf_counter()
            answer = await client.post("/webhooks/stripe", content=payload,
                                       headers={"stripe-signature": sign(payload, SECRET)})
            latencies.append(time.perf_counter() - started)
            outcomes.append(answer.json()["outcome"])

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started, outcomes


def test_webhook_throughput_and_latency(settings):
    configured = settings.model_copy(update={"stripe_webhook_secret": SECRET,
                                             "stripe_prices": "pro=price_pro,team=price_team"})

    async def run() -> None:
        container = build_container(configured)
        try:
            workspaces = []
            async with container.identity_uow() as uow:
                for _ in range(50):
                    workspace = Workspace(uuid.uuid4(), "bench", datetime.now(UTC))
                    await uow.workspaces.add(workspace)
                    workspaces.append(workspace.id)
                await uow.commit()
            now = int(time.time())

            def payloads(count: int) -> list[bytes]:
                made = []
                for index in range(count):
                    workspace = workspaces[index % len(workspaces)]
                    price = "price_team" if index % 2 else "price_pro"
                    data = subscription_object(f"sub_b{uuid.uuid4().hex[:12]}", "cus_bench", price, "active",
                                               str(workspace))
                    made.append(event(f"evt_{uuid.uuid4().hex}", "customer.subscription.created", data, now + index))
                return made

            async with asgi_client(create_app(configured, container)) as client:
                await _deliver_all(client, payloads(20), CONCURRENCY)  # warm-up
                distinct = payloads(EVENTS)
                latencies, wall, outcomes = await _deliver_all(client, distinct, CONCURRENCY)
                print(f"\nwebhooks, distinct events, {CONCURRENCY} concurrent senders: "
                      f"{summary(latencies, wall, len(distinct), EVENTS)}")
                events = payloads(EVENTS // 10)
                tenfold = [payload for payload in events for _ in range(10)]  # copies of one event adjacent
                latencies, wall, outcomes = await _deliver_all(client, tenfold, CONCURRENCY)
                print(f"webhooks, each event 10x (copies in flight together): "
                      f"{summary(latencies, wall, len(tenfold), len(events))}; outcomes "
                      f"processed={outcomes.count('processed')} duplicate={outcomes.count('duplicate')}")
        finally:
            await shutdown(container)

    asyncio.run(run())


def test_webhooks_per_api_process(settings, test_env):
    """The same distinct events against `keel serve` in its own process (the senders in this one, so the
    server's CPU is its own): events/s, latency, and the server's CPU per event from /proc."""
    senders, count = int(os.environ.get("BENCH_WEBHOOK_SENDERS", "32")), int(os.environ.get("BENCH_WEBHOOKS", "3000"))
    env = {**test_env, "KEEL_STRIPE_WEBHOOK_SECRET": SECRET, "KEEL_STRIPE_PRICES": "pro=price_pro,team=price_team",
           "KEEL_LOG_LEVEL": "warning"}

    async def run(base: str, pid: int) -> str:
        container = build_container(settings)
        try:
            workspaces = await _workspaces(container, 200)
        finally:
            await shutdown(container)
        now = int(time.time())
        payloads = [event(f"evt_{uuid.uuid4().hex}", "customer.subscription.created", subscription_object(
            f"sub_s{uuid.uuid4().hex[:12]}", "cus_bench", "price_team" if index % 2 else "price_pro", "active",
            str(workspaces[index % len(workspaces)])), now + index) for index in range(count + 100)]
        limits = httpx.Limits(max_connections=senders, max_keepalive_connections=senders)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
            await _deliver_all(client, payloads[:100], senders)  # warm-up
            cpu = _cpu_seconds(pid)
            latencies, wall, outcomes = await _deliver_all(client, payloads[100:], senders)
            cpu = _cpu_seconds(pid) - cpu
        assert outcomes.count("processed") == count, set(outcomes)
        return (f"{summary(latencies, wall, count, count)}; server CPU {cpu / count * 1000:.2f} ms per event "
                f"({cpu / wall * 100:.0f}% of a core)")

    with _keel_serve(env) as (base, pid):
        print(f"\nwebhooks against `keel serve` (one process), {senders} concurrent senders: "
              f"{asyncio.run(run(base, pid))}")


async def _workspaces(container, count: int) -> list:
    made = []
    async with container.identity_uow() as uow:
        for _ in range(count):
            workspace = Workspace(uuid.uuid4(), "bench", datetime.now(UTC))
            await uow.workspaces.add(workspace)
            made.append(workspace.id)
        await uow.commit()
    return made
