"""Ingestion: bytes → blocks → chunks → vectors, for a batch of documents, safe to retry at any point."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from uuid import UUID

from src.core.knowledge.chunking import Chunk, StructuredChunker
from src.core.knowledge.config import KnowledgeConfig
from src.core.knowledge.documents import INGEST_JOB
from src.core.knowledge.formats import read_blocks
from src.core.knowledge.spaces import fill_space, live_spaces
from src.ports.knowledge import (
    Document,
    DocumentStatus,
    Embedders,
    KeywordIndex,
    KnowledgeUnitOfWork,
    PdfReader,
    StoredChunk,
    UnreadableDocument,
)
from src.ports.shared import Clock, InvalidInput, Job
from src.ports.telemetry import Telemetry

MAX_ERROR = 500
GRAPH_JOB = "knowledge.build_graph"
log = logging.getLogger(__name__)
REQUEUE_JOB = "knowledge.requeue_stuck_documents"  # periodic: documents whose ingestion job was lost
KEYWORD_INDEX_JOB = "knowledge.check_keyword_index"  # periodic: the BM25 index answers after a Postgres restart


class IngestionIncomplete(Exception):
    """Some chunks still lack vectors (e.g. a space was added meanwhile); the job runs again."""


def search_text_of(title: str, chunk: Chunk) -> str:
    """What gets embedded and keyword-indexed: the chunk in its context (document title, heading path)."""
    context = " > ".join((title, *chunk.heading_path))
    return f"{context}\n{chunk.text}"


class IngestDocuments:
    """- Chunks each queued document once (a retry finds the chunks and keeps them), fails unreadable ones
    with a readable reason, embeds the chunks still lacking vectors in every live space, then marks the
    documents ready and queues their knowledge-graph extraction. Documents already ready, failed or deleted
    are skipped: a redelivered job is a no-op.
    - No connection is held while parsing or embedding."""

    def __init__(self, uow: Callable[[], KnowledgeUnitOfWork], embedders: Embedders, pdf: PdfReader,
                 clock: Clock, config: KnowledgeConfig, telemetry: Telemetry) -> None:
        self._uow = uow
        self._telemetry = telemetry
        self._embedders = embedders
        self._pdf = pdf
        self._clock = clock
        self._config = config
        self._chunker = StructuredChunker(config.chunk_chars, config.chunk_overlap_chars)

    async def execute(self, document_ids: list[UUID]) -> None:
        pending = await self._chunk(document_ids)
        if not pending:
            return
        async with self._uow() as uow:
            spaces = await live_spaces(uow, self._embedders, self._clock)
        for space in spaces:
            embedder = self._embedders.for_space(space.name)
            await fill_space(self._uow, embedder, space, pending, self._config.embed_batch_size, self._telemetry)
        await self._finish(pending, [space.name for space in spaces])
        log.info("ingested %d document(s) into %d embedding space(s)", len(pending), len(spaces))

    async def _chunk(self, document_ids: list[UUID]) -> list[UUID]:
        """The documents that have chunks and wait for vectors: read in one unit of work, chunked with no
        connection held, stored in one transaction (a document deleted or chunked meanwhile is left as is)."""
        async with self._uow() as uow:
            documents = await uow.documents.get_many(document_ids)
            def having(status: DocumentStatus) -> list[UUID]:
                return [id_ for id_ in document_ids if id_ in documents and documents[id_].status is status]

            pending = having(DocumentStatus.PROCESSING)  # chunked by an earlier attempt
            waiting = having(DocumentStatus.QUEUED)
            bodies = await uow.documents.bodies(waiting) if waiting else {}
            queued = [(documents[id_], bodies[id_]) for id_ in waiting]
        chunked: dict[UUID, list[StoredChunk]] = {}
        for document, body in queued:
            try:
                chunked[document.id] = self._chunks_of(document, body)
            except (UnreadableDocument, InvalidInput) as exc:
                await self._fail(document.id, str(exc))
        if not chunked:
            return pending
        async with self._uow() as uow:
            locked = await uow.documents.get_many(list(chunked), for_update=True)
            for document_id, chunks in chunked.items():
                current = locked.get(document_id)
                if current is None or current.status is not DocumentStatus.QUEUED:
                    if current is not None and current.status is DocumentStatus.PROCESSING:
                        pending.append(document_id)
                    continue
                await uow.chunks.replace(document_id, chunks)
                await uow.documents.save(replace(current, status=DocumentStatus.PROCESSING, chunk_count=len(chunks),
                                                 embedded_count=0, error=None, updated_at=self._clock.now()))
                pending.append(document_id)
            await uow.commit()
        return pending

    def _chunks_of(self, document: Document, body: bytes) -> list[StoredChunk]:
        pieces = self._chunker.chunk(read_blocks(document.content_type, body, self._pdf))
        if not pieces:
            raise UnreadableDocument("no text found in the document")
        return [StoredChunk(uuid.uuid4(), document.id, document.workspace_id, piece.position, piece.text,
                            piece.heading_path, search_text_of(document.title, piece)) for piece in pieces]

    async def _fail(self, document_id: UUID, reason: str) -> None:
        async with self._uow() as uow:
            current = await uow.documents.get(document_id, for_update=True)
            if current is not None and current.status is DocumentStatus.QUEUED:
                await uow.documents.save(replace(current, status=DocumentStatus.FAILED, error=reason[:MAX_ERROR],
                                                 updated_at=self._clock.now()))
                await uow.commit()

    async def _finish(self, document_ids: list[UUID], spaces: list[str]) -> None:
        """Every document whose chunks all have vectors becomes ready, in one transaction, with its graph
        extraction queued."""
        async with self._uow() as uow:
            locked = await uow.documents.get_many(document_ids, for_update=True)
            for document_id in document_ids:
                current = locked.get(document_id)
                if current is None or current.status is not DocumentStatus.PROCESSING:
                    continue
                for space in spaces:
                    if await uow.chunks.count_vectors(document_id, space) < current.chunk_count:
                        raise IngestionIncomplete(f"document {document_id} still lacks vectors in {space}")
                await uow.documents.save(replace(current, status=DocumentStatus.READY,
                                                 embedded_count=current.chunk_count, updated_at=self._clock.now()))
                if self._config.graph:
                    uow.defer(Job(GRAPH_JOB, {"document_ids": [str(document_id)]}))
            await uow.commit()


class GiveUpIngestion:
    """- After the last retry: documents of the batch not yet ready fail with the reason, so none stays
    `processing` forever. Their chunks and vectors go; a re-upload starts afresh."""

    def __init__(self, uow: Callable[[], KnowledgeUnitOfWork], clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def execute(self, document_ids: list[UUID], reason: str) -> None:
        async with self._uow() as uow:
            for document_id in document_ids:
                current = await uow.documents.get(document_id, for_update=True)
                if current is None or current.status in (DocumentStatus.READY, DocumentStatus.FAILED):
                    continue
                await uow.chunks.replace(document_id, [])
                await uow.documents.save(replace(current, status=DocumentStatus.FAILED, chunk_count=0,
                                                 embedded_count=0, error=f"ingestion failed: {reason}"[:MAX_ERROR],
                                                 updated_at=self._clock.now()))
            await uow.commit()


class RequeueStuckDocuments:
    """- Documents still queued `after` their last change (their job was lost: a broker that dropped it, or
      one sent before jobs went through the outbox) get their ingestion job again. Ingestion is idempotent, so
      a job that was only slow in a long queue costs a no-op."""

    def __init__(self, uow: Callable[[], KnowledgeUnitOfWork], clock: Clock, after: timedelta = timedelta(minutes=15),
                 batch: int = 16) -> None:
        self._uow = uow
        self._clock = clock
        self._after = after
        self._batch = batch

    async def execute(self, limit: int = 1000) -> int:
        async with self._uow() as uow:
            stuck = await uow.documents.queued_before(self._clock.now() - self._after, limit)
            ids = [str(document.id) for document in stuck]
            for start in range(0, len(ids), self._batch):
                uow.defer(Job(INGEST_JOB, {"document_ids": ids[start:start + self._batch]}))
            await uow.commit()
        if ids:
            log.warning("re-queued the ingestion of %d document(s) left queued", len(ids))
        return len(ids)


class CheckKeywordIndex:
    """- The keyword index still answers (the bundled BM25 index can come back from a Postgres restart
      answering nothing): rebuilt when it does not. At the API's start and periodically in a worker."""

    def __init__(self, index: KeywordIndex) -> None:
        self._index = index

    async def execute(self) -> bool:
        return await self._index.repair_if_silent()
