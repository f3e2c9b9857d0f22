"""Query embeddings with and without the per-process cache (printed, never asserted): the local MiniLM, the
SciFact train queries each asked 4 times, the two embedders interleaved query by query so the shared
machine's load falls on both alike.

Run: ./keel test benchmarks/test_query_cache_bench.py -s   (BENCH_QUERIES=100 distinct queries)
"""

from __future__ import annotations

import json
import os
import statistics
import time

from src.adapters.embeddings.registry import EmbedderRegistry, EmbeddingOptions
from src.config import REPO_ROOT

QUERIES = REPO_ROOT.parent / "shared" / "datasets" / "scifact" / "queries-train.jsonl"
COUNT = int(os.environ.get("BENCH_QUERIES", "100"))


async def test_repeated_query_embedding_with_and_without_the_cache():
    texts = [json.loads(line)["text"] for line in QUERIES.open()][:COUNT]
    cached = EmbedderRegistry(EmbeddingOptions()).configured()
    uncached = EmbedderRegistry(EmbeddingOptions(query_cache=0)).configured()
    await cached.embed_query("warm up")
    await uncached.embed_query("warm up")
    times: dict[str, list[float]] = {"cache": [], "no cache": []}
    for _ in range(4):
        for text in texts:
            for name, embedder in (("cache", cached), ("no cache", uncached)):
                started = time.perf_counter()
                await embedder.embed_query(text)
                times[name].append((time.perf_counter() - started) * 1000)
    load = os.getloadavg()[0]
    print(f"\n{COUNT} queries x 4, interleaved (load average {load:.2f}, {os.cpu_count()} cores):")
    for name, measured in times.items():
        print(f"  {name:9s} p50 {statistics.median(measured):7.3f} ms  mean {statistics.fmean(measured):7.3f} ms")
    ratio = statistics.fmean(times["no cache"]) / statistics.fmean(times["cache"])
    print(f"  mean ratio no cache / cache: {ratio:.1f}x (3 of every 4 asks are repeats)")
