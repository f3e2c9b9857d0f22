"""`keel eval retrieval`: a BEIR corpus through Keel's own upload → ingestion → search path, in a throwaway
workspace, scored with trec_eval's nDCG@10 and Recall@100."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from dependency_injector import providers

from src.core.knowledge.documents import DocumentUpload
from src.core.knowledge.search import Search, SearchRequest
from src.evaluation.beir import RUN_DEPTH, evaluate, fold_to_documents, read_corpus, read_qrels, read_queries
from src.evaluation.beir import write_trec_run as write_run
from src.ports.billing import Entitlement, EntitlementStatus, PlanLimits
from src.ports.identity import Workspace
from src.ports.knowledge import DocumentStatus, SearchMode
from src.ports.shared import Job

UPLOAD_BATCH = 500
INGEST_GROUP = 128
CHUNKS_PER_QUERY = 2 * RUN_DEPTH  # documents have one to a few chunks; fold them to ≥ 100 documents


class CollectedJobs:
    """Stands in for the queue: the evaluation runs the ingestion use case itself, in this process."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []

    async def enqueue(self, job: Job) -> None:
        self.jobs.append(job)


@dataclass(frozen=True, slots=True)
class ModeResult:
    mode: str
    metrics: dict[str, float]
    seconds_per_query: float
    run_file: Path


async def _create_workspace(container) -> UUID:
    workspace = Workspace(uuid.uuid4(), f"retrieval-eval-{datetime.now(UTC):%Y%m%d-%H%M%S}", datetime.now(UTC))
    async with container.identity_uow() as uow:
        await uow.workspaces.add(workspace)
        await uow.commit()
    return workspace.id


async def _delete_workspace(container, workspace_id: UUID) -> None:
    async with container.identity_uow() as uow:
        await uow.workspaces.delete(workspace_id)
        await uow.commit()


class Operator:
    """The evaluation runs as the operator on the console, in a workspace of its own: every access is theirs."""

    async def require(self, caller, permission, workspace_id=None):
        return caller


class Unmetered:
    """The evaluation's throwaway workspace is an operator's measurement, not a customer: no plan limits."""

    async def entitlement(self, workspace_id: UUID) -> Entitlement:
        limits = PlanLimits(10**12, 10**12, 10**9, 10**15, 1, ("offline",), "offline")
        return Entitlement(workspace_id, "evaluation", limits, EntitlementStatus.ACTIVE, None, None, datetime.now(UTC))


async def ingest_corpus(container, workspace_id: UUID, corpus: Path, say: Callable[[str], None],
                        build_graph: bool = False) -> dict[UUID, list[str]]:
    """Uploads every corpus document and ingests them (and builds their knowledge graph when asked); returns
    Keel document id -> corpus ids (identical texts are one document, as the upload deduplicates them)."""
    collected = CollectedJobs()
    container.jobs.override(providers.Object(collected))
    container.entitlements.override(providers.Object(Unmetered()))
    container.access.override(providers.Object(Operator()))
    corpus_ids: dict[UUID, list[str]] = {}
    started = time.monotonic()
    try:
        documents = read_corpus(corpus)
        while batch := list(itertools.islice(documents, UPLOAD_BATCH)):
            uploads = [DocumentUpload(title=(doc.title or doc.id)[:300], data=doc.text.encode() or b" ",
                                      content_type="text/plain", metadata={"corpus_id": doc.id}) for doc in batch]
            results = await container.upload_documents().execute(None, workspace_id, uploads)
            for doc, result in zip(batch, results, strict=True):
                corpus_ids.setdefault(result.document.id, []).append(doc.id)
        queued = [UUID(raw) for job in collected.jobs for raw in job.kwargs["document_ids"]]
        ingest = container.ingest_documents()
        done = 0
        for start in range(0, len(queued), INGEST_GROUP):
            ids = queued[start:start + INGEST_GROUP]  # larger groups than the API's jobs: fuller embedding batches
            await ingest.execute(ids)
            done += len(ids)
            if done % 500 < len(ids):
                say(f"ingested {done}/{len(corpus_ids)} documents ({done / (time.monotonic() - started):.1f}/s)")
        say(f"ingested {len(corpus_ids)} documents in {time.monotonic() - started:.0f}s")
        if build_graph:
            await build_graphs(container, queued, say)
    finally:
        container.jobs.reset_override()
        container.entitlements.reset_override()
        container.access.reset_override()
    return corpus_ids


async def kept_corpus(container, workspace_id: UUID) -> dict[UUID, list[str]]:
    """A workspace an earlier run kept: its ready documents, oldest first, by the corpus ids they came with."""
    documents, after = [], None
    while True:
        async with container.knowledge_uow() as uow:
            page = await uow.documents.page(workspace_id, status=DocumentStatus.READY, limit=1000, after=after)
        if not page:
            break
        documents += page
        after = (page[-1].created_at, page[-1].id)
    return {doc.id: [doc.metadata["corpus_id"]] for doc in reversed(documents) if "corpus_id" in doc.metadata}


async def build_graphs(container, document_ids: list[UUID], say: Callable[[str], None]) -> None:
    started, build = time.monotonic(), container.build_document_graph()
    for start in range(0, len(document_ids), INGEST_GROUP):
        await build.execute(document_ids[start:start + INGEST_GROUP])
        done = min(start + INGEST_GROUP, len(document_ids))
        if done % 1000 < INGEST_GROUP:
            say(f"graph of {done}/{len(document_ids)} documents ({done / (time.monotonic() - started):.1f}/s)")
    say(f"built the knowledge graph of {len(document_ids)} documents in {time.monotonic() - started:.0f}s")


async def run_queries(search: Search, workspace_id: UUID, queries: dict[str, str], mode: SearchMode,
                      chunk_to_corpus: Callable[[UUID], list[str]]) -> dict[str, list[tuple[str, float]]]:
    run = {}
    for qid, text in queries.items():
        hits = await search.execute(SearchRequest(workspace_id, text, mode, k=CHUNKS_PER_QUERY))
        pairs = [(corpus_id, hit.score) for hit in hits for corpus_id in chunk_to_corpus(hit.chunk.document_id)]
        run[qid] = fold_to_documents(pairs)
    return run


async def evaluate_retrieval(container, *, corpus: Path, queries: Path, qrels: Path | None, run_out: Path,
                             modes: list[SearchMode], say: Callable[[str], None] = print,
                             keep_workspace: bool = False, reuse: UUID | None = None) -> list[ModeResult]:
    """Scores every mode on a fresh throwaway workspace, or on `reuse`, one an earlier run kept, as it is
    (documents, vectors and graph)."""
    judged = read_qrels(qrels) if qrels else None
    texts = read_queries(queries)
    if await container.check_keyword_index().execute():
        say("the BM25 keyword index had lost rows (a Postgres restart): rebuilt it")
    config = container.knowledge()
    search = Search(container.knowledge_uow, container.knowledge_reads, container.embedders(),
                    replace(config, max_k=CHUNKS_PER_QUERY),
                    container.telemetry())
    workspace_id = reuse or await _create_workspace(container)
    keep_workspace = keep_workspace or reuse is not None
    results = []
    try:
        if reuse is None:
            corpus_ids = await ingest_corpus(container, workspace_id, corpus, say,
                                             build_graph=SearchMode.GRAPH in modes)
        else:
            corpus_ids = await kept_corpus(container, workspace_id)
            say(f"reusing workspace {workspace_id}: {len(corpus_ids)} ready documents, its graph as built")
        for mode in modes:
            started = time.monotonic()
            run = await run_queries(search, workspace_id, texts, mode, lambda doc_id: corpus_ids.get(doc_id, []))
            per_query = (time.monotonic() - started) / max(len(texts), 1)
            out = run_out if len(modes) == 1 else run_out.with_name(f"{run_out.stem}.{mode.value}{run_out.suffix}")
            write_run(out, run, tag=f"keel-{mode.value}")
            metrics = evaluate(run, judged) if judged else {}
            results.append(ModeResult(mode.value, metrics, per_query, out))
            figures = "  ".join(f"{name} {value:.4f}" for name, value in metrics.items())
            say(f"{mode.value:8s} {figures}  ({per_query * 1000:.0f} ms/query)  run: {out}")
    finally:
        if keep_workspace:
            say(f"kept workspace {workspace_id} (run again on it with --workspace {workspace_id})")
        else:
            await _delete_workspace(container, workspace_id)
    return results
