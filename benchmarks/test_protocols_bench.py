"""The same answer through the OpenAI-compatible API and through the GraphQL subscription (printed, never
asserted): one `keel serve`, the fake OpenAI stream in its own process (40 tokens at 20 tokens/s), retrieval
off so both do the same work; answers alternate between the two protocols, one at a time, so the server's
CPU (/proc, read around each answer) is each answer's own. TTFT p50/p95 and server CPU per token.

Run: ./keel test benchmarks -k protocols -s   (BENCH_ANSWERS=40 per protocol)
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid

import httpx
import openai
import pytest

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
from tests.conftest import healthy, wait_for
from tests.net import free_port

CREATE_KEY = """mutation($w: ID!) { createApiKey(workspaceId: $w, name: "bench", scopes: [CONTENT_READ, CONTENT_WRITE])
  { ... on CreatedApiKey { secret } } }"""


@pytest.mark.timeout(1800)
def test_openai_api_against_graphql_subscription(settings, test_env):
    samples, fake_port = int(os.environ.get("BENCH_ANSWERS", "40")), free_port()
    env = {**test_env, "KEEL_OPENAI_API_KEY": "sk-test-keel", "KEEL_OPENAI_BASE_URL": f"http://127.0.0.1:{fake_port}/v1",
           "KEEL_LOG_LEVEL": "warning", "KEEL_CHAT_RETRIEVAL_K": "0"}
    fake = _start([sys.executable, "-m", "benchmarks.fake_provider_server", str(fake_port), str(TOKENS), str(DELAY)],
                  env)
    try:
        wait_for(lambda: healthy(f"http://127.0.0.1:{fake_port}", "/v1/models"), timeout=60, interval=0.3)
        with _keel_serve(env) as (base, pid):
            token, workspace = asyncio.run(_account_with_documents(settings, base, with_documents=False))
            with httpx.Client(base_url=base, timeout=30) as http:
                key = http.post("/graphql", headers={"authorization": f"Bearer {token}"}, json={
                    "query": CREATE_KEY, "variables": {"w": workspace}}).json()["data"]["createApiKey"]["secret"]
            results = asyncio.run(_alternate(base, pid, token, workspace, key, samples))
    finally:
        fake.terminate()
        fake.wait(timeout=30)
    print(f"\n{samples} answers of {TOKENS} tokens per protocol, alternating, load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for name, (ttfts, cpu, tokens) in results.items():
        print(f"{name}: TTFT p50 {statistics.median(ttfts) * 1000:.1f} ms, p95 {pct(ttfts, 95):.1f} ms; "
              f"server CPU {cpu / tokens * 1e6:.0f} µs per token")
    (graphql_ttft, graphql_cpu, graphql_tokens), (openai_ttft, openai_cpu, openai_tokens) = results.values()
    print(f"  /v1 vs GraphQL: TTFT p50 {(statistics.median(openai_ttft) - statistics.median(graphql_ttft)) * 1000:+.1f}"
          f" ms; CPU per token x{(openai_cpu / openai_tokens) / (graphql_cpu / graphql_tokens):.2f}")


async def _alternate(base: str, pid: int, token: str, workspace: str, key: str, samples: int) -> dict:
    client = openai.AsyncOpenAI(api_key=key, base_url=f"{base}/v1", max_retries=0)
    measured = {"GraphQL subscription": ([], 0.0, 0), "/v1/chat/completions": ([], 0.0, 0)}

    async def through_openai() -> tuple[float, int]:
        started = time.perf_counter()
        stream = await client.chat.completions.create(model="gpt-4o-mini", stream=True, messages=[
            {"role": "user", "content": f"How do glaciers carve fjords? {uuid.uuid4().hex[:4]}"}])
        first, tokens = None, 0
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                first = first or time.perf_counter()
                tokens += 1
        return first - started, tokens

    async with keel_socket(base.replace("http://", "ws://") + "/graphql", token) as ws:
        async def through_graphql() -> tuple[float, int]:
            ttft, gaps = await keel_stream(ws, workspace)
            return ttft, len(gaps) + 1

        for index in range(samples + 3):
            for name, read in (("GraphQL subscription", through_graphql), ("/v1/chat/completions", through_openai)):
                before = _cpu_seconds(pid)
                ttft, tokens = await read()
                cpu = _cpu_seconds(pid) - before
                if index >= 3:  # warm connections and caches first
                    ttfts, total_cpu, total_tokens = measured[name]
                    ttfts.append(ttft)
                    measured[name] = (ttfts, total_cpu + cpu, total_tokens + tokens)
    await client.close()
    return measured
