"""Webhook figures (printed, never asserted): events/s and latency p50/p95 through the ASGI app with
signature verification, for distinct events and under 10x duplicate delivery (the duplicates arriving
concurrently, as Stripe's retries and parallel deliveries do).

Run: ./keel test benchmarks -k billing -s
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
import uuid
from datetime import UTC, datetime

from sqlalchemy import text

from benchmarks.test_conversation_bench import _cpu_seconds, _keel_serve, _machine_cpu
from src.container import build_container, shutdown
from src.main import create_app
from src.ports.identity import Workspace
from tests.conftest import asgi_client, start_worker, stop_worker
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
    server's CPU is its own): events/s, latency, and the server's CPU per event from /proc. Per mode
    (BENCH_WEBHOOK_MODES): inline applies each event before answering; worker stores it, answers, and a
    Dramatiq worker applies it, either running meanwhile on the same cores (worker) or started once all are
    answered (worker-later: the API process's own capacity, then the worker's rate alone). The applied rate
    comes from the events' processed_at."""
    senders, count = int(os.environ.get("BENCH_WEBHOOK_SENDERS", "32")), int(os.environ.get("BENCH_WEBHOOKS", "3000"))
    env = {**test_env, "KEEL_STRIPE_WEBHOOK_SECRET": SECRET, "KEEL_STRIPE_PRICES": "pro=price_pro,team=price_team",
           "KEEL_LOG_LEVEL": "warning"}

    async def run(base: str, pid: int, mode: str, worker_env: dict) -> str:
        worker = start_worker(worker_env) if mode != "inline" else None
        container = build_container(settings)
        try:
            workspaces = await _workspaces(container, 200)
            now = int(time.time())
            payloads = [event(f"evt_{uuid.uuid4().hex}", "customer.subscription.created", subscription_object(
                f"sub_s{uuid.uuid4().hex[:12]}", "cus_bench", "price_team" if index % 2 else "price_pro", "active",
                str(workspaces[index % len(workspaces)])), now + index) for index in range(count + 100)]
            await _post_all(base, payloads[:100], senders)  # warm-up
            await _applied(container, payloads[:100])
            if mode == "worker-later":
                stop_worker(worker)
            cpu, first_sent, machine = _cpu_seconds(pid), time.perf_counter(), _machine_cpu()
            senders_cpu = time.process_time()
            latencies, wall, outcomes = await _post_all(base, payloads[100:], senders)
            cpu, machine = _cpu_seconds(pid) - cpu, _machine_cpu() - machine
            senders_cpu = time.process_time() - senders_cpu
            assert outcomes.count("processed" if mode == "inline" else "accepted") == count, set(outcomes)
            if mode == "worker-later":
                worker = start_worker(worker_env)
            applied = await _applied(container, payloads[100:]) - first_sent
            rate = await _applied_rate(container, payloads[100:])
        finally:
            if worker is not None:
                stop_worker(worker)
            await shutdown(container)
        return (f"{summary(latencies, wall, count, count)}; server CPU {cpu / count * 1000:.2f} ms per event "
                f"({cpu / wall * 100:.0f}% of a core; the machine's {os.cpu_count()} cores "
                f"{machine / wall / (os.cpu_count() or 1) * 100:.0f}% busy, the senders' share "
                f"{senders_cpu / wall * 100:.0f}% of a core); all applied {applied:.1f} s after the "
                f"first was sent, at {rate:.0f} events/s")

    for mode in os.environ.get("BENCH_WEBHOOK_MODES", "inline,worker,worker-later").split(","):
        moded = {**env, "KEEL_STRIPE_WEBHOOKS_APPLY": "inline" if mode == "inline" else "worker"}
        with _keel_serve(moded) as (base, pid):
            print(f"\nwebhooks against `keel serve` (one process), {mode} mode, {senders} concurrent senders: "
                  f"{asyncio.run(run(base, pid, mode, moded))}")


async def _post_all(base: str, payloads: list[bytes], concurrency: int) -> tuple[list[float], float, list[str]]:
    """Like `_deliver_all`, over plain keep-alive HTTP/1.1 connections with every request made beforehand: an
    HTTP client library costs as much CPU per request as the endpoint, on the cores the server needs."""
    host, port = base.removeprefix("http://").split(":")
    requests = [(f"POST /webhooks/stripe HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                 f"Stripe-Signature: {sign(payload, SECRET)}\r\nContent-Length: {len(payload)}\r\n\r\n").encode()
                + payload for payload in payloads]
    pending = iter(requests)
    latencies: list[float] = []
    outcomes: list[str] = []

    async def sender() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for request in pending:
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                body = await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                outcomes.append(json.loads(body).get("outcome", head.split(b"\r\n")[0].decode()))
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started, outcomes


async def _applied(container, payloads: list[bytes], timeout: float = 300) -> float:
    """Waits until the events of `payloads` are all processed; returns the time then (perf_counter)."""
    ids = [json.loads(payload)["id"] for payload in payloads]
    deadline = time.monotonic() + timeout
    async with container.engine().connect() as connection:
        while time.monotonic() < deadline:
            done = await connection.execute(text(
                "SELECT count(*) FROM stripe_events WHERE id = ANY(:ids) AND status = 'processed'"), {"ids": ids})
            if done.scalar_one() == len(ids):
                return time.perf_counter()
            await connection.rollback()
            await asyncio.sleep(0.05)
    raise TimeoutError(f"the {len(ids)} events were not all applied within {timeout} s")


async def _applied_rate(container, payloads: list[bytes]) -> float:
    """Events applied per second, from the first to the last one's processed_at."""
    ids = [json.loads(payload)["id"] for payload in payloads]
    async with container.engine().connect() as connection:
        span = (await connection.execute(text(
            "SELECT extract(epoch FROM max(processed_at) - min(processed_at)) FROM stripe_events "
            "WHERE id = ANY(:ids)"), {"ids": ids})).scalar_one()
    return len(ids) / max(float(span), 1e-3)


async def _workspaces(container, count: int) -> list:
    made = []
    async with container.identity_uow() as uow:
        for _ in range(count):
            workspace = Workspace(uuid.uuid4(), "bench", datetime.now(UTC))
            await uow.workspaces.add(workspace)
            made.append(workspace.id)
        await uow.commit()
    return made
