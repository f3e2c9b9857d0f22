"""Hybrid fusion settings on a BEIR dataset already ingested by `keel eval retrieval --keep-workspace`:
candidates of each retriever are read once per query (the same SQL search uses), then every fusion setting
is scored on them. Prints nDCG@10 / Recall@100 per setting.

Run: .venv/bin/python -m benchmarks.tune_fusion --workspace <id> --queries Q.jsonl --qrels R.tsv
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from uuid import UUID

from sqlalchemy import text

from src.config import load_settings
from src.container import build_container, shutdown
from src.core.knowledge.fusion import reciprocal_rank, weighted_zscore
from src.evaluation.beir import evaluate, fold_to_documents, read_qrels, read_queries
from src.ports.knowledge import SearchFilters

WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


async def corpus_ids_of(container, workspace_id: UUID) -> dict[UUID, str]:
    found, after = {}, None
    listing = container.list_documents()
    while True:
        page = await listing.execute(workspace_id, first=100, after=after)
        found.update({document.id: document.metadata["corpus_id"] for document in page.documents})
        if page.next_cursor is None:
            return found
        after = page.next_cursor


async def main(workspace_id: UUID, queries: Path, qrels: Path, depth: int) -> None:
    container = build_container(load_settings())
    try:
        corpus_of = await corpus_ids_of(container, workspace_id)
        async with container.knowledge_uow() as uow:
            space = next(space for space in await uow.spaces.all() if space.status.value == "active")
        embedder = container.embedders().for_space(space.name)
        candidates = {}
        for qid, query in read_queries(queries).items():
            vector = await embedder.embed_query(query)
            async with container.knowledge_uow() as uow:
                candidates[qid] = (
                    await uow.search.vector_candidates(workspace_id, space, vector, depth, SearchFilters()),
                    await uow.search.keyword_candidates(workspace_id, query, depth, SearchFilters()))
        async with container.engine().connect() as connection:
            rows = await connection.execute(text("SELECT id, document_id FROM chunks WHERE workspace_id = :w"),
                                            {"w": workspace_id})
            chunk_document = {row.id: corpus_of.get(row.document_id) for row in rows}
        judged = read_qrels(qrels)

        def score(fuse) -> str:
            run = {qid: fold_to_documents([(chunk_document[item.chunk_id], item.score) for item in fuse(*pair)])
                   for qid, pair in candidates.items()}
            metrics = evaluate(run, judged)
            return f"nDCG@10 {metrics['ndcg@10']:.4f}  Recall@100 {metrics['recall@100']:.4f}"

        print(f"{len(candidates)} queries, {depth} candidates per retriever")
        for weight in WEIGHTS:
            print(f"zscore keyword_weight {weight:.1f}: {score(lambda v, k, w=weight: weighted_zscore(v, k, w))}")
        print(f"rrf k=60: {score(reciprocal_rank)}")
    finally:
        await shutdown(container)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=UUID, required=True)
    parser.add_argument("--queries", type=Path, required=True)
    parser.add_argument("--qrels", type=Path, required=True)
    parser.add_argument("--depth", type=int, default=100)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.workspace, arguments.queries, arguments.qrels, arguments.depth))
