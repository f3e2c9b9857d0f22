"""Conversation figures (printed, never asserted).

1. Overhead Keel adds to time to first token and per token: the same fake OpenAI stream (its own process)
   read directly with the SDK, and read through Keel's GraphQL subscription (`keel serve` in its own process,
   a websocket kept open for all answers as a browser tab keeps one, retrieval off and on), p50/p95; the
   answers alternate between the two.
2. Concurrent streams one API process sustains: `keel serve` in its own process, the fake provider in
   another (20 tokens/s per stream, BENCH_STREAM_TOKENS=400 per answer: 20 s, so the streams overlap), N
   websocket subscriptions from this process; how many streamed at once at the peak, added inter-token
   delay p95, the server's memory per stream and CPU per token, and the CPU the fake provider and the client
   took from the same cores. BENCH_API_PROCESSES=1,2 runs it against one then two API processes.

3. CPU per streamed chunk of the provider adapter alone (the SDK's streaming response, SSE parsed as JSON).
4. One checkpoint of BENCH_STREAMS live answers (the write an API process makes every few seconds).

Run: ./keel test benchmarks -k conversation -s
     (BENCH_STREAMS=1000, BENCH_ANSWERS=40, BENCH_RETRIEVAL_K=0,6, BENCH_POOL_SIZE=10 by default)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import openai
import psutil
import pytest
import websockets

from src.adapters.llm.openai_chat import OpenAIChat
from src.config import REPO_ROOT
from src.container import build_container, shutdown
from src.ports.conversation import Conversation, Message, MessageRole, MessageStatus
from src.ports.models import ChatMessage, ChatRequest, TextDelta
from tests.conftest import healthy, keel_serve, signed_up, wait_for
from tests.conversation_helpers import account, ids, on_plan, ready_documents
from tests.net import free_port

CHAT = """subscription($w: ID!, $q: String!) { chat(workspaceId: $w, content: $q) { kind text } }"""
TOKENS, DELAY = 40, 0.05  # 20 tokens/s


def pct(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100)[q - 1] * 1000


def line(name: str, samples: list[float]) -> str:
    return f"{name}: p50 {statistics.median(samples) * 1000:.2f} ms, p95 {pct(samples, 95):.2f} ms (n={len(samples)})"


async def direct_stream(client: openai.AsyncOpenAI) -> tuple[float, list[float]]:
    started = time.perf_counter()
    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "q"}],
                                                  stream=True, stream_options={"include_usage": True})
    first, stamps = None, []
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            stamps.append(time.perf_counter())
            first = first or stamps[-1]
    return first - started, [b - a for a, b in zip(stamps, stamps[1:], strict=False)]


async def keel_stream(ws, workspace: str) -> tuple[float, list[float]]:
    """One answer on an open, initialised websocket (a browser tab keeps one open for all its subscriptions)."""
    operation = uuid.uuid4().hex
    started = time.perf_counter()
    await ws.send(json.dumps({"id": operation, "type": "subscribe", "payload": {"query": CHAT, "variables": {
        "w": workspace, "q": "How do glaciers carve fjords?"}}}))
    first, stamps = None, []
    while True:
        message = json.loads(await ws.recv())
        if message["type"] == "complete":
            break
        if message["type"] != "next" or message["payload"]["data"]["chat"]["kind"] == "ERROR":
            raise RuntimeError(f"the answer failed: {str(message)[:300]}")
        if message["payload"]["data"]["chat"]["kind"] == "DELTA":
            stamps.append(time.perf_counter())
            first = first or stamps[-1]
    return first - started, [b - a for a, b in zip(stamps, stamps[1:], strict=False)]


@contextlib.asynccontextmanager
async def keel_socket(url: str, token: str):
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"], max_queue=None) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
        await ws.recv()
        yield ws


@pytest.mark.timeout(1800)
def test_conversation_overhead_on_ttft_and_per_token(settings, test_env):
    """The fake provider, Keel (`keel serve`) and this client each run in their own process."""
    fake_port, samples = free_port(), int(os.environ.get("BENCH_ANSWERS", "40"))
    env = {**test_env, "KEEL_OPENAI_API_KEY": "sk-test-keel", "KEEL_OPENAI_BASE_URL": f"http://127.0.0.1:{fake_port}/v1",
           "KEEL_LOG_LEVEL": "warning"}
    fake = _start([sys.executable, "-m", "benchmarks.fake_provider_server", str(fake_port), str(TOKENS), str(DELAY)],
                  env)

    async def alternate(url: str, token: str, workspace: str) -> tuple[tuple[list, list], tuple[list, list]]:
        """One answer read directly, then one through Keel, in turn: both see the same machine at the same
        time. One client each, its connections kept open (as Keel keeps its provider clients)."""
        direct, keel = ([], []), ([], [])
        client = openai.AsyncOpenAI(api_key="sk-test-keel", base_url=f"http://127.0.0.1:{fake_port}/v1",
                                    max_retries=0)
        async with keel_socket(url, token) as ws:
            for index in range(samples + 5):
                for (ttfts, gaps), read in ((direct, lambda: direct_stream(client)),
                                            (keel, lambda: keel_stream(ws, workspace))):
                    ttft, stream_gaps = await read()
                    if index >= 5:  # the first few warm connections and caches
                        ttfts.append(ttft)
                        gaps += stream_gaps
        await client.close()
        return direct, keel

    try:
        wait_for(lambda: healthy(f"http://127.0.0.1:{fake_port}", "/v1/models"), timeout=60, interval=0.3)
        for k in [int(k) for k in os.environ.get("BENCH_RETRIEVAL_K", "0,6").split(",")]:
            with _keel_serve({**env, "KEEL_CHAT_RETRIEVAL_K": str(k)}) as (base, _):
                token, workspace = asyncio.run(_account_with_documents(settings, base, with_documents=k > 0))
                url = base.replace("http://", "ws://") + "/graphql"
                (direct_ttft, direct_gaps), (keel_ttft, keel_gaps) = asyncio.run(alternate(url, token, workspace))
            print(f"\nfake provider read directly with the SDK: {line('TTFT', direct_ttft)}; "
                  f"{line('gap', direct_gaps)}")
            print(f"through Keel (GraphQL websocket, retrieval k={k}): {line('TTFT', keel_ttft)}; "
                  f"{line('gap', keel_gaps)}")
            added_p50 = (statistics.median(keel_ttft) - statistics.median(direct_ttft)) * 1000
            print(f"  added by Keel: TTFT p50 {added_p50:.2f} ms, "
                  f"p95 {pct(keel_ttft, 95) - pct(direct_ttft, 95):.2f} ms; per token p50 "
                  f"{(statistics.median(keel_gaps) - statistics.median(direct_gaps)) * 1000:.3f} ms, p95 "
                  f"{pct(keel_gaps, 95) - pct(direct_gaps, 95):.3f} ms")
    finally:
        fake.terminate()
        fake.wait(timeout=30)


def test_provider_adapter_cpu_per_streamed_chunk(test_env):
    """CPU this process spends per chunk reading a stream through Keel's OpenAI adapter (the SDK's streaming
    response on its aiohttp transport, SSE frames parsed as JSON), chunks sent 1 ms apart as a paced
    provider sends them: each one is a socket wake-up of its own."""
    fake_port, chunks = free_port(), 3000
    fake = _start([sys.executable, "-m", "benchmarks.fake_provider_server", str(fake_port), str(chunks), "0.001"],
                  test_env)

    async def read() -> tuple[float, int]:
        chat = OpenAIChat("sk-test-keel", f"http://127.0.0.1:{fake_port}/v1")
        request = ChatRequest("gpt-4o-mini", "system", (ChatMessage("user", "q"),), 10)
        try:
            async for _ in chat.stream(request):  # warm the connection and the code paths
                pass
            began, deltas = time.process_time(), 0
            async for event in chat.stream(request):
                deltas += isinstance(event, TextDelta)
            return time.process_time() - began, deltas
        finally:
            await chat.aclose()

    try:
        wait_for(lambda: healthy(f"http://127.0.0.1:{fake_port}", "/v1/models"), timeout=60, interval=0.3)
        cpu, deltas = asyncio.run(read())
        print(f"\nOpenAI adapter, {deltas} paced chunks: {cpu / deltas * 1e6:.0f} µs CPU per chunk")
    finally:
        fake.terminate()
        fake.wait(timeout=30)


async def _account_with_documents(settings, base: str, with_documents: bool) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        account = await signed_up(client, email=f"bench-{uuid.uuid4().hex[:10]}@example.com")
    _, workspace_id = ids(account)
    container = build_container(settings)
    try:
        await on_plan(container, workspace_id, "team")  # room for every sample in the daily tokens
        if with_documents:
            await ready_documents(container, workspace_id, {
                f"Doc {i}": f"# Doc {i}\n\nGlaciers carve fjords, note {i}. " * 20 for i in range(30)})
    finally:
        await shutdown(container)
    return account["accessToken"], str(workspace_id)


@contextlib.contextmanager
def _keel_serve(env: dict) -> Iterator[tuple[str, int]]:
    """`keel serve` in its own process: yields its base URL and pid."""
    with keel_serve(env, _output()) as (base, api):
        yield base, api.pid


def _output():
    """BENCH_SERVER_LOG=FILE keeps the processes' output (e.g. the traceback behind a failed stream)."""
    if not os.environ.get("BENCH_SERVER_LOG"):
        return subprocess.DEVNULL
    return open(os.environ["BENCH_SERVER_LOG"], "ab")  # the child process owns it


def _start(command: list[str], env: dict) -> subprocess.Popen:
    log = _output()
    return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=log, start_new_session=True)


@pytest.mark.timeout(3600)
def test_concurrent_streams_one_api_process_sustains(settings, test_env):
    streams = int(os.environ.get("BENCH_STREAMS", "1000"))
    tokens = int(os.environ.get("BENCH_STREAM_TOKENS", "400"))
    fake_port = free_port()
    env = {**test_env, "KEEL_OPENAI_API_KEY": "sk-test-keel",
           "KEEL_OPENAI_BASE_URL": f"http://127.0.0.1:{fake_port}/v1",
           "KEEL_CHAT_RETRIEVAL_K": "0", "KEEL_LOG_LEVEL": "warning",
           "KEEL_CHAT_FIRST_TOKEN_TIMEOUT_SECONDS": "120", "KEEL_DB_POOL_SIZE": os.environ.get("BENCH_POOL_SIZE", "10")}
    fake = _start([sys.executable, "-m", "benchmarks.fake_provider_server", str(fake_port), str(tokens), str(DELAY)],
                  env)
    try:
        # BENCH_API_PROCESSES=1,2: the same streams against one, then two API processes, side by side
        for processes in os.environ.get("BENCH_API_PROCESSES", "1").split(","):
            with _keel_serve({**env, "KEEL_API_PROCESSES": processes}) as (base, pid):
                result = asyncio.run(_many_streams(base, streams, pid, tokens, fake.pid))
            print(f"\n{streams} concurrent subscriptions, `keel serve` with {processes} API process(es), fake "
                  f"provider at 20 tokens/s: {result}")
    finally:
        fake.terminate()
        fake.wait(timeout=30)


def _processes(pid: int) -> list[int]:
    """The server and the API processes it supervises (`keel serve --workers N`)."""
    return [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time the process (and its children) used, from /proc."""
    total = 0.0
    for each in _processes(pid):
        with open(f"/proc/{each}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _machine_cpu() -> float:
    """Busy CPU seconds of the whole machine so far (every process: the senders, Postgres, a worker), from
    /proc/stat."""
    with open("/proc/stat") as stat:
        ticks = [int(value) for value in stat.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def _rss(pid: int) -> int:
    """Resident memory of the server process (and its children), from /proc (bytes)."""
    total = 0
    for each in _processes(pid):
        with open(f"/proc/{each}/status") as status:
            total += next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))
    return total


async def _settled(pid: int, timeout: float = 120) -> None:
    """Waits until the server is idle: its start-up work (loading the embedding model on a thread while it
    already serves) would otherwise share the CPU with the burst."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = _cpu_seconds(pid)
        await asyncio.sleep(1)
        if _cpu_seconds(pid) - before < 0.05:
            return


async def _many_streams(base: str, streams: int, server_pid: int, tokens: int, fake_pid: int) -> str:
    users = max(1, streams // 10)  # the free plan's daily tokens allow ~35 answers per workspace
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        accounts = []
        for _ in range(users):
            accounts.append(await signed_up(client, email=f"bench-{uuid.uuid4().hex[:10]}@example.com"))
    await _settled(server_pid)
    rss_before, cpu_before, machine_before = _rss(server_pid), _cpu_seconds(server_pid), _machine_cpu()
    harness_before = _cpu_seconds(fake_pid) + time.process_time()
    gaps, ttfts, completed, peak_rss, streaming, peak_streaming = [], [], 0, 0, 0, 0
    url = base.replace("http://", "ws://") + "/graphql"
    # BENCH_CONNECTED=1: every socket is open and authenticated before the first chat starts (users already on
    # the page); otherwise each chat's connect and handshake is part of the burst
    connected_first = os.environ.get("BENCH_CONNECTED") == "1"
    ready, go = asyncio.Semaphore(0), asyncio.Event()

    async def one(index: int) -> None:
        nonlocal completed, streaming, peak_streaming
        account = accounts[index % users]
        async with websockets.connect(url, subprotocols=["graphql-transport-ws"], open_timeout=120,
                                      max_queue=None) as ws:
            await ws.send(json.dumps({"type": "connection_init",
                                      "payload": {"Authorization": f"Bearer {account['accessToken']}"}}))
            await ws.recv()
            if connected_first:
                ready.release()
                await go.wait()
            started = time.perf_counter()
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": CHAT, "variables": {
                "w": account["user"]["workspaces"][0]["id"], "q": "Count"}}}))
            last = None
            try:
                while True:
                    message = json.loads(await ws.recv())
                    if message["type"] == "complete":
                        break
                    if message["type"] == "error" or message["payload"].get("errors"):
                        raise RuntimeError(f"subscription failed: {str(message)[:200]}")
                    if message["type"] == "next" and message["payload"]["data"]["chat"]["kind"] == "DELTA":
                        now = time.perf_counter()
                        if last is None:
                            ttfts.append(now - started)
                            streaming += 1
                            peak_streaming = max(peak_streaming, streaming)
                        else:
                            gaps.append(now - last)
                        last = now
            finally:
                streaming -= last is not None
            completed += 1

    async def sample_memory() -> None:
        nonlocal peak_rss
        while True:
            peak_rss = max(peak_rss, _rss(server_pid))
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample_memory())
    began = time.perf_counter()
    everyone = asyncio.gather(*(one(index) for index in range(streams)), return_exceptions=True)
    if connected_first:
        async def all_ready() -> None:
            for _ in range(streams):
                await ready.acquire()
        with contextlib.suppress(TimeoutError):  # a socket that failed to open never signals: start the rest
            await asyncio.wait_for(all_ready(), timeout=180)
        go.set()
    outcomes = await everyone
    wall = time.perf_counter() - began
    cpu, machine = _cpu_seconds(server_pid) - cpu_before, _machine_cpu() - machine_before
    harness = _cpu_seconds(fake_pid) + time.process_time() - harness_before
    sampler.cancel()
    failures = [str(o)[:300] for o in outcomes if isinstance(o, BaseException)]
    added = [gap - DELAY for gap in gaps]
    per_stream = (peak_rss - rss_before) / streams / 1024
    first_failure = f"; first: {failures[0]}" if failures else ""
    burst = "sockets connected before the burst" if connected_first else "each chat connecting in the burst"
    return (f"{burst}: {completed}/{streams} answers of {tokens} tokens completed in {wall:.1f} s "
            f"({len(failures)} failed"
            f"{first_failure}); at most {peak_streaming} streaming at once; "
            f"TTFT p50 {statistics.median(ttfts) * 1000:.0f} ms p95 {pct(ttfts, 95):.0f} ms; "
            f"inter-token delay added over the provider's {DELAY * 1000:.0f} ms: "
            f"p50 {statistics.median(added) * 1000:.1f} ms, p95 {pct(added, 95):.1f} ms; "
            f"server RSS {rss_before / 2**20:.0f} MiB -> peak {peak_rss / 2**20:.0f} MiB "
            f"(~{per_stream:.0f} KiB per stream); server CPU {cpu:.1f} s for {completed * tokens} tokens "
            f"(~{cpu / max(completed * tokens, 1) * 1e6:.0f} µs per token, set-up and storage included); "
            f"the fake provider and this client used {harness:.1f} s CPU on the same {os.cpu_count()} cores, "
            f"{machine / wall / (os.cpu_count() or 1) * 100:.0f}% busy in all")


def test_checkpoint_of_every_live_answer(settings):
    """One checkpoint of BENCH_STREAMS answers streaming at 20 tokens/s, each with 2 s of new text (40 tokens):
    the one write an API process makes every KEEL_CHAT_CHECKPOINT_SECONDS; wall time and this process's CPU."""
    streams, rounds = int(os.environ.get("BENCH_STREAMS", "1000")), 20

    async def measure() -> str:
        container = build_container(settings)
        live, save = container.live_answers(), container.save_answer_progress()
        user_id, workspace_id = await account(container)
        now = datetime.now(UTC)
        conversation = Conversation(uuid.uuid4(), workspace_id, user_id, "checkpoints", now, now)
        answers = [Message(uuid.uuid4(), conversation.id, MessageRole.ASSISTANT, "", MessageStatus.STREAMING, now)
                   for _ in range(streams)]
        async with container.conversation_uow() as uow:
            await uow.conversations.add(conversation)
            for answer in answers:
                await uow.conversations.add_turn(conversation, answer, new=False)
            await uow.commit()
        done = asyncio.Event()
        buffers = [live.start(answer.id, lambda _: done.wait()) for answer in answers]
        walls, cpus = [], []
        try:
            for _ in range(rounds):
                for buffer in buffers:
                    for token in range(40):
                        buffer.append(f" w{token}")
                began, cpu = time.perf_counter(), time.process_time()
                assert await save.execute() == streams
                walls.append(time.perf_counter() - began)
                cpus.append(time.process_time() - cpu)
        finally:
            done.set()
            async with container.conversation_uow() as uow:
                await uow.conversations.delete(conversation.id)
                await uow.commit()
            await shutdown(container)
        return (f"wall per checkpoint p50 {statistics.median(walls) * 1000:.0f} ms, max {max(walls) * 1000:.0f} ms "
                f"(n={rounds}); API process CPU per checkpoint p50 "
                f"{statistics.median(cpus) * 1000:.1f} ms ({statistics.median(cpus) / streams * 1e6:.0f} µs per "
                f"answer, {statistics.median(cpus) / 2 * 100:.1f}% of a core at one checkpoint every 2 s)")

    print(f"\ncheckpoint of {streams} live answers: {asyncio.run(measure())}")
