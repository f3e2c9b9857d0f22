"""Knowledge figures (printed, never asserted): ingestion throughput against the embedding model alone;
search latency p50/p95 through GraphQL and through the SQL path at 5k chunks and at 200k synthetic vectors;
HNSW recall@10 against an exact scan at the configured ef_search.

Run: ./keel test benchmarks -k knowledge -s     (the 200k case takes several minutes: loading + HNSW build)
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import time
import uuid
from datetime import UTC, datetime
from itertools import islice

import numpy as np
import pytest
from pgvector.asyncpg import register_vector
from sqlalchemy import text

from src.adapters.postgres.base import BM25_INDEX
from src.adapters.postgres.knowledge.repositories import hnsw_index_name
from src.config import REPO_ROOT
from src.container import build_container, shutdown
from src.core.knowledge.search import SearchRequest
from src.evaluation.retrieval import ingest_corpus
from src.main import create_app
from src.ports.identity import Membership, Workspace, WorkspaceRole
from src.ports.knowledge import EmbeddingSpace, SearchFilters, SearchMode, SpaceStatus
from tests.conftest import asgi_client, fresh_database, signed_up
from tests.conversation_helpers import on_plan

SCIFACT = REPO_ROOT.parent / "shared" / "datasets" / "scifact"
SEARCH = """query($ws: ID!, $q: String!, $mode: SearchMode!) { search(workspaceId: $ws, query: $q, mode: $mode, k: 10) {
  __typename ... on SearchResults { hits { chunkId score } } } }"""
DIMENSIONS = 384
LATENT = 64
SPACE = "local/all-MiniLM-L6-v2"


def percentiles(samples: list[float]) -> str:
    cuts = statistics.quantiles(samples, n=20)
    return f"p50 {statistics.median(samples) * 1000:.1f} ms, p95 {cuts[18] * 1000:.1f} ms (n={len(samples)})"


def scifact_queries(count: int) -> list[str]:
    with (SCIFACT / "queries-train.jsonl").open() as lines:
        return [json.loads(line)["text"] for line in islice(lines, count)]


def test_knowledge_ingestion_throughput_against_the_model_alone(settings, tmp_path):
    """Per backend of the local model (torch, ONNX fp32, ONNX int8; BENCH_BACKENDS), interleaved over
    BENCH_ROUNDS rounds: the whole pipeline's chunks/s against the model alone on the same chunks."""
    config = fresh_database(settings, "bench_ingest")
    corpus = tmp_path / "corpus.jsonl"
    with (SCIFACT / "corpus.jsonl").open() as lines:
        corpus.write_text("".join(islice(lines, 300)))
    backends = os.environ.get("BENCH_BACKENDS", "torch,onnx,onnx-int8").split(",")
    rounds = int(os.environ.get("BENCH_ROUNDS", "2"))

    async def once(backend: str) -> tuple[float, float]:
        container = build_container(config.model_copy(update={"embedding_backend": backend}))
        try:
            await container.embedders().configured().embed_documents(["warm up"])  # load the model first
            workspace = Workspace(uuid.uuid4(), "bench", datetime.now(UTC))
            async with container.identity_uow() as uow:
                await uow.workspaces.add(workspace)
                await uow.commit()
            started = time.perf_counter()
            await ingest_corpus(container, workspace.id, corpus, lambda message: None)
            pipeline = time.perf_counter() - started
            async with container.engine().connect() as connection:
                texts = list((await connection.execute(text("SELECT search_text FROM chunks WHERE workspace_id = :w"),
                                                       {"w": workspace.id})).scalars())
            started = time.perf_counter()
            await container.embedders().configured().embed_documents(texts)
            model = time.perf_counter() - started
            return len(texts) / pipeline, len(texts) / model
        finally:
            await shutdown(container)

    rates: dict[str, list[tuple[float, float]]] = {backend: [] for backend in backends}
    for _ in range(rounds):  # interleaved: the machine's load hits every backend alike
        for backend in backends:
            rates[backend].append(asyncio.run(once(backend)))
    print("\ningestion, 300 SciFact abstracts -> 600 chunks, median of "
          f"{rounds} interleaved rounds (load average {os.getloadavg()[0]:.2f}):")
    base = statistics.median(pipeline for pipeline, _ in rates[backends[0]])
    for backend, runs in rates.items():
        pipeline, model = statistics.median(p for p, _ in runs), statistics.median(m for _, m in runs)
        print(f"  {backend:10s} pipeline {pipeline:5.1f} chunks/s ({pipeline / base:.2f}x {backends[0]}); the model "
              f"alone {model:5.1f} chunks/s; pipeline overhead {100 * (1 - pipeline / model):.0f}% of the time")


async def _load_synthetic(container, workspace_id: uuid.UUID, count: int, seed: int = 7) -> np.ndarray:
    """`count` chunks of ready documents (one chunk each) with SciFact-vocabulary text and synthetic unit
    vectors shaped like sentence embeddings: clustered, on a low-dimensional subspace (64) of the 384
    dimensions, plus a little isotropic noise. Uniform random vectors would be far harder for any ANN index
    than real embeddings are. Loaded by binary COPY; the indexes are built after the load."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(max(count // 200, 10), LATENT))
    points = latent[rng.integers(0, len(latent), count)] + 0.5 * rng.normal(size=(count, LATENT))
    vectors = points @ rng.normal(size=(LATENT, DIMENSIONS)) + 0.5 * rng.normal(size=(count, DIMENSIONS))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    with (SCIFACT / "corpus.jsonl").open() as lines:
        words = " ".join(json.loads(line)["text"] for line in islice(lines, 2000)).split()
    pick = random.Random(seed)
    now = datetime.now(UTC)
    space = EmbeddingSpace(SPACE, DIMENSIONS, SpaceStatus.ACTIVE, now, now)
    async with container.knowledge_uow() as uow:
        await uow.spaces.add(space)
        await uow.commit()
    async with container.engine().connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
        await register_vector(driver)
        await driver.execute(f"DROP INDEX IF EXISTS {hnsw_index_name(SPACE)}")
        for start in range(0, count, 20_000):
            ids = [uuid.uuid4() for _ in range(start, min(start + 20_000, count))]
            docs = [(i, workspace_id, f"synthetic {i}", "text/plain", i.hex, 0, "{}", "ready", 1, 1, now, now)
                    for i in ids]
            await driver.copy_records_to_table(
                "documents", records=docs, columns=["id", "workspace_id", "title", "content_type", "content_hash",
                                                    "byte_size", "metadata", "status", "chunk_count",
                                                    "embedded_count", "created_at", "updated_at"])
            chunks = [(uuid.uuid4(), i, workspace_id, 0, body, body) for i in ids
                      for body in [" ".join(pick.choices(words, k=60))]]
            await driver.copy_records_to_table("chunks", records=chunks, columns=[
                "id", "document_id", "workspace_id", "position", "text", "search_text"])
            await driver.copy_records_to_table("chunk_embeddings", records=[
                (chunk[0], SPACE, chunk[1], workspace_id, vectors[start + n]) for n, chunk in enumerate(chunks)],
                columns=["chunk_id", "space", "document_id", "workspace_id", "embedding"])
        started = time.perf_counter()
        await driver.execute("SET maintenance_work_mem = '1GB'")
        if await driver.fetchval(f"SELECT count(*) FROM pg_indexes WHERE indexname = '{BM25_INDEX}'"):
            await driver.execute(f"REINDEX INDEX {BM25_INDEX}")  # one bulk build instead of 200k inserts
        await driver.execute("ANALYZE documents; ANALYZE chunks; ANALYZE chunk_embeddings")
        await connection.commit()
    async with container.knowledge_uow() as uow:
        await uow.spaces.save(space)  # (re)creates the HNSW index over the loaded vectors
        await uow.commit()
    print(f"\nloaded {count} synthetic chunks; BM25 reindex + HNSW build {time.perf_counter() - started:.0f} s")
    return vectors


async def _sql_path_latency(container, workspace_id, queries: list[str], vectors: np.ndarray) -> None:
    space = EmbeddingSpace(SPACE, DIMENSIONS, SpaceStatus.ACTIVE, datetime.now(UTC))
    timings: dict[str, list[float]] = {"vector": [], "keyword": []}
    for number, query in enumerate(queries):
        probe = vectors[number % len(vectors)].tolist()
        async with container.knowledge_uow() as uow:
            started = time.perf_counter()
            await uow.search.vector_candidates(workspace_id, space, probe, 100, SearchFilters())
            timings["vector"].append(time.perf_counter() - started)
            started = time.perf_counter()
            await uow.search.keyword_candidates(workspace_id, query, 100, SearchFilters())
            timings["keyword"].append(time.perf_counter() - started)
    for side, samples in timings.items():
        print(f"  SQL path, {side} top-100: {percentiles(samples)}")
    for mode in (SearchMode.KEYWORD, SearchMode.HYBRID):  # the use case, without the API around it
        samples = []
        for query in queries:
            started = time.perf_counter()
            await container.search().execute(SearchRequest(workspace_id, query, mode))
            samples.append(time.perf_counter() - started)
        print(f"  search use case {mode.value}, k=10: {percentiles(samples)}")


async def _graphql_latency(container, settings, workspace_id, queries: list[str]) -> None:
    async with asgi_client(create_app(settings, container)) as client:
        user = await signed_up(client)
        async with container.identity_uow() as uow:  # give the benchmark user the synthetic workspace
            await uow.memberships.add(Membership(workspace_id, uuid.UUID(user["user"]["id"]), WorkspaceRole.OWNER,
                                                 datetime.now(UTC)))
            await uow.commit()
        await on_plan(container, workspace_id, "team")  # 20,000 requests a minute: the quota is not measured out
        headers = {"Authorization": f"Bearer {user['accessToken']}"}
        for mode in ("VECTOR", "KEYWORD", "HYBRID"):
            samples = []
            for query in queries:
                started = time.perf_counter()
                response = await client.post("/graphql", headers=headers, json={
                    "query": SEARCH, "variables": {"ws": str(workspace_id), "q": query, "mode": mode}})
                samples.append(time.perf_counter() - started)
                found = (response.json()["data"] or {}).get("search", {})
                assert found.get("__typename") == "SearchResults", response.text
            print(f"  GraphQL search {mode.lower()}, k=10 (query embedding included): {percentiles(samples)}")


async def _hnsw_recall(container, workspace_id, vectors: np.ndarray, probes: int = 100) -> None:
    """Probes near stored vectors (a query resembles some passage); the exact top 10 comes from a scan."""
    rng = np.random.default_rng(11)
    space = EmbeddingSpace(SPACE, DIMENSIONS, SpaceStatus.ACTIVE, datetime.now(UTC))
    probes_and_truth, exact_times = [], []
    for index in rng.integers(0, len(vectors), probes):
        probe = vectors[index] + 0.05 * rng.normal(size=DIMENSIONS)
        probe = (probe / np.linalg.norm(probe)).astype(np.float32).tolist()
        async with container.knowledge_uow() as uow:
            await uow.db.execute(text("SET LOCAL enable_indexscan = off"))
            started = time.perf_counter()
            exact = await uow.search.vector_candidates(workspace_id, space, probe, 10, SearchFilters())
            exact_times.append(time.perf_counter() - started)
        probes_and_truth.append((probe, {candidate.chunk_id for candidate in exact}))
    print(f"  exact scan top-10: {percentiles(exact_times)}")
    tuning = container.search_settings()
    configured = tuning.ef_search
    for ef_search in sorted({40, configured, 200, 400}):
        tuning.ef_search = ef_search
        recalls, times = [], []
        for probe, truth in probes_and_truth:
            async with container.knowledge_uow() as uow:
                started = time.perf_counter()
                found = await uow.search.vector_candidates(workspace_id, space, probe, 10, SearchFilters())
                times.append(time.perf_counter() - started)
            recalls.append(len({candidate.chunk_id for candidate in found} & truth) / 10)
        chosen = " (configured)" if ef_search == configured else ""
        print(f"  HNSW ef_search {ef_search}{chosen}: recall@10 vs exact {statistics.mean(recalls):.3f}, "
              f"{percentiles(times)}")
    tuning.ef_search = configured


@pytest.mark.parametrize("count", [5_000, 200_000])
def test_knowledge_search_latency_and_hnsw_recall(settings, count):
    config = fresh_database(settings, f"bench_search_{count}")

    async def run() -> None:
        container = build_container(config)
        try:
            workspace = Workspace(uuid.uuid4(), "bench", datetime.now(UTC))
            async with container.identity_uow() as uow:
                await uow.workspaces.add(workspace)
                await uow.commit()
            vectors = await _load_synthetic(container, workspace.id, count)
            queries = scifact_queries(200)
            await container.search().execute(SearchRequest(workspace.id, "warm up", SearchMode.HYBRID))
            print(f"{count} chunks:")
            await _sql_path_latency(container, workspace.id, queries, vectors)
            await _graphql_latency(container, config, workspace.id, queries)
            await _hnsw_recall(container, workspace.id, vectors)
        finally:
            await shutdown(container)

    asyncio.run(run())
