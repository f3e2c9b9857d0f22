"""Knowledge-graph figures (printed, never asserted).

1. Offline extraction throughput: SciFact abstracts chunked as ingestion chunks them, entities and relations
   extracted by the offline extractor (chunks/s, entities and relations per chunk).
2. 1- and 2-hop expansion latency (what graph search adds per query), p50/p95, on a synthetic workspace graph
   of ≥ 100k vertices (documents + chunks + entities, skewed entity popularity), for the AGE store and the
   plain-table store; also how long writing that graph took.

Run: ./keel test benchmarks -k graph -s      (BENCH_GRAPH_DOCUMENTS=2000 by default: ≈ 104k vertices)
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import time
import uuid

import pytest
from sqlalchemy import text

from src.adapters.extraction.offline import OfflineExtractor
from src.config import REPO_ROOT
from src.container import build_container, shutdown
from src.core.knowledge.chunking import StructuredChunker
from src.core.knowledge.config import KnowledgeConfig
from src.core.knowledge.formats import read_blocks
from src.core.knowledge.graph_queries import expansion_scores
from src.ports.graph import CO_OCCURS, ChunkText, DocumentGraph, Entity, Relation
from tests.conversation_helpers import account

SCIFACT = REPO_ROOT.parent / "shared" / "datasets" / "scifact" / "corpus.jsonl"
CHUNKS_PER_DOCUMENT, MENTIONS_PER_CHUNK = 10, 10
HUB_MENTIONS = KnowledgeConfig().graph_hub_mentions


def pct(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100)[q - 1] * 1000


def test_offline_extraction_throughput():
    if not SCIFACT.exists():
        pytest.skip(f"{SCIFACT} is not here")
    chunker = StructuredChunker(1000, 150)
    with SCIFACT.open() as corpus:
        abstracts = [json.loads(line) for line, _ in zip(corpus, range(2000), strict=False)]
    chunks = [ChunkText(uuid.uuid4(), piece.text) for doc in abstracts
              for piece in chunker.chunk(read_blocks("text/plain", f"{doc['title']} {doc['text']}".encode(), None))]
    extractor = OfflineExtractor()
    started = time.perf_counter()
    found = [extractor.extract_one(chunk) for chunk in chunks]
    elapsed = time.perf_counter() - started
    entities = sum(len(f.entities) for f in found) / len(found)
    relations = sum(len(f.relations) for f in found) / len(found)
    print(f"\noffline extraction, {len(chunks)} SciFact chunks from {len(abstracts)} abstracts: "
          f"{len(chunks) / elapsed:.0f} chunks/s on one core ({elapsed:.1f} s); "
          f"{entities:.1f} entities and {relations:.1f} relations per chunk")


async def _synthetic_workspace(container, documents: int) -> tuple[uuid.UUID, list[uuid.UUID], float]:
    """Documents and chunks as rows, then each document's graph written through the store."""
    user_id, workspace_id = await account(container)
    rng = random.Random(7)
    pool = [Entity(uuid.uuid4(), workspace_id, f"entity {i}", f"Entity {i}", "term")
            for i in range(documents * CHUNKS_PER_DOCUMENT * 6)]
    by_id = {entity.id: entity for entity in pool}
    async with container.knowledge_uow() as uow:
        await uow.db.execute(text("""
            INSERT INTO documents (id, workspace_id, title, content_hash, status, created_by)
            SELECT gen_random_uuid(), :w, 'synthetic ' || n, md5(:seed || n), 'ready', :u
            FROM generate_series(1, :n) n"""), {"w": workspace_id, "u": user_id, "n": documents,
                                                  "seed": str(workspace_id)})
        await uow.db.execute(text("""
            INSERT INTO chunks (id, document_id, workspace_id, position, text, search_text)
            SELECT gen_random_uuid(), d.id, d.workspace_id, p, 'chunk', 'chunk'
            FROM documents d, generate_series(0, :c - 1) p WHERE d.workspace_id = :w"""),
            {"w": workspace_id, "c": CHUNKS_PER_DOCUMENT})
        rows = (await uow.db.execute(text(
            "SELECT document_id, array_agg(id ORDER BY position) FROM chunks WHERE workspace_id = :w "
            "GROUP BY document_id"), {"w": workspace_id})).all()
        await uow.commit()
    started = time.perf_counter()
    written: set[uuid.UUID] = set()
    for document_id, chunk_ids in rows:
        mentions, relations, used = [], [], {}
        for chunk_id in chunk_ids:
            # skewed popularity: a few entities are mentioned everywhere, most a handful of times
            picked = {pool[min(int(rng.paretovariate(0.6)) - 1, len(pool) - 1) if rng.random() < 0.3
                           else rng.randrange(len(pool))].id for _ in range(MENTIONS_PER_CHUNK)}
            picked_list = sorted(picked)
            mentions += [(chunk_id, entity) for entity in picked_list]
            relations += [Relation(a, CO_OCCURS, b, chunk_id) for a, b in zip(picked_list, picked_list[1:],
                                                                               strict=False)]
            used.update(dict.fromkeys(picked_list, True))
        entities = tuple(by_id[ident] for ident in used)
        async with container.knowledge_uow() as uow:
            await uow.graph.write_document(DocumentGraph(
                workspace_id, document_id, tuple(chunk_ids), entities, tuple(mentions), tuple(relations),
                tuple((e.key, e.id) for e in entities if e.id not in written)))
            await uow.commit()
        written.update(used)
    return workspace_id, [c for _, chunk_ids in rows for c in chunk_ids], time.perf_counter() - started


@pytest.mark.timeout(7200)
@pytest.mark.parametrize("store", ["age", "tables"])
def test_graph_expansion_latency_at_scale(settings, store):
    documents = int(os.environ.get("BENCH_GRAPH_DOCUMENTS", "2000"))

    async def run() -> str:
        container = build_container(settings.model_copy(update={"graph_store": store}))
        try:
            workspace_id, chunk_ids, write_seconds = await _synthetic_workspace(container, documents)
            async with container.knowledge_uow() as uow:
                entity_count = (await uow.db.execute(text(
                    "SELECT count(*) FROM kg_entities WHERE workspace_id = :w"), {"w": workspace_id})).scalar_one()
            vertices = documents + len(chunk_ids) + entity_count
            rng, lines = random.Random(11), []
            for hops in (1, 2):
                samples, reached = [], []
                for _ in range(60):
                    seeds = rng.sample(chunk_ids, 5)
                    started = time.perf_counter()
                    async with container.knowledge_uow() as uow:
                        scores = await expansion_scores(uow.graph, workspace_id, seeds, hops, 10, HUB_MENTIONS)
                    samples.append(time.perf_counter() - started)
                    reached.append(len(scores))
                samples = samples[5:]
                lines.append(f"{hops}-hop expansion from 5 seed chunks (fan-out 10): p50 "
                             f"{statistics.median(samples) * 1000:.1f} ms, p95 {pct(samples, 95):.1f} ms, "
                             f"{statistics.median(reached):.0f} chunks reached (median)")
            return (f"{store}: {vertices} vertices ({documents} documents, {len(chunk_ids)} chunks, {entity_count} "
                    f"entities), written in {write_seconds:.0f} s ({documents / write_seconds:.1f} documents/s)\n  "
                    + "\n  ".join(lines))
        finally:
            await shutdown(container)

    print("\n" + asyncio.run(run()))
