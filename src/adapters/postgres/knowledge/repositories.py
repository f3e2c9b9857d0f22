"""Documents, chunks, embedding spaces and their vectors in Postgres."""

from __future__ import annotations

import re
from datetime import datetime
from uuid import UUID

from sqlalchemy import delete, func, insert, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from src.adapters.postgres.base import HNSW_INDEX_PREFIX
from src.adapters.postgres.knowledge.tables import (
    ChunkEmbeddingRow,
    ChunkRow,
    DocumentBodyRow,
    DocumentRow,
    EmbeddingSpaceRow,
)
from src.adapters.postgres.mapping import to_record, values_of
from src.ports.knowledge import (
    Document,
    DocumentStatus,
    EmbeddingSpace,
    SpaceStatus,
    StoredChunk,
)

_SPACE_NAME = re.compile(r"^[A-Za-z0-9._:/@-]{1,120}$")
UPLOAD_LOCK_CLASS = 0x6B6E6F77  # advisory lock class of uploads into one workspace ("know")
_LIVE = (DocumentStatus.PROCESSING.value, DocumentStatus.READY.value)


def space_literal(name: str) -> str:
    """A space name as an SQL literal. Partial-index predicates must be literals for the planner to match
    them (a bind parameter turns into a generic plan that cannot use the index); names come from
    configuration and are checked against a strict pattern first."""
    if not _SPACE_NAME.match(name):
        raise ValueError(f"unsafe embedding space name {name!r}")
    return "'" + name.replace("'", "''") + "'"


def hnsw_index_name(name: str) -> str:
    return HNSW_INDEX_PREFIX + re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:30]


def _document(row: DocumentRow) -> Document:
    return to_record(row, Document, metadata=row.metadata_, status=DocumentStatus(row.status))


def _chunk(row: ChunkRow) -> StoredChunk:
    return to_record(row, StoredChunk, heading_path=tuple(row.heading_path))


class PgDocumentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, document: Document, body: bytes) -> bool:
        values = values_of(document, status=document.status.value)
        values["metadata_"] = values.pop("metadata")
        added = await self._session.execute(
            pg_insert(DocumentRow).values(**values).on_conflict_do_nothing(
                index_elements=["workspace_id", "content_hash"]).returning(DocumentRow.id))
        if added.scalar_one_or_none() is None:
            return False
        await self._session.execute(insert(DocumentBodyRow).values(document_id=document.id, body=body))
        return True

    async def usage(self, workspace_id: UUID) -> tuple[int, int]:
        await self._session.execute(text("SELECT pg_advisory_xact_lock(:space, hashtext(:key))"),
                                    {"space": UPLOAD_LOCK_CLASS, "key": str(workspace_id)})
        count, size = (await self._session.execute(
            select(func.count(), func.coalesce(func.sum(DocumentRow.byte_size), 0))
            .where(DocumentRow.workspace_id == workspace_id))).one()
        return int(count), int(size)

    async def by_hash(self, workspace_id: UUID, content_hash: str) -> Document | None:
        row = (await self._session.execute(select(DocumentRow).where(
            DocumentRow.workspace_id == workspace_id, DocumentRow.content_hash == content_hash))).scalar_one_or_none()
        return None if row is None else _document(row)

    async def get(self, document_id: UUID, *, for_update: bool = False) -> Document | None:
        query = select(DocumentRow).where(DocumentRow.id == document_id).execution_options(populate_existing=True)
        if for_update:
            query = query.with_for_update()
        row = (await self._session.execute(query)).scalar_one_or_none()
        return None if row is None else _document(row)

    async def body(self, document_id: UUID) -> bytes:
        return (await self._session.execute(
            select(DocumentBodyRow.body).where(DocumentBodyRow.document_id == document_id))).scalar_one()

    async def get_many(self, document_ids: list[UUID], *, for_update: bool = False) -> dict[UUID, Document]:
        query = (select(DocumentRow).where(DocumentRow.id.in_(document_ids)).order_by(DocumentRow.id)
                 .execution_options(populate_existing=True))
        rows = (await self._session.execute(query.with_for_update() if for_update else query)).scalars()
        return {row.id: _document(row) for row in rows}

    async def bodies(self, document_ids: list[UUID]) -> dict[UUID, bytes]:
        rows = await self._session.execute(select(DocumentBodyRow.document_id, DocumentBodyRow.body).where(
            DocumentBodyRow.document_id.in_(document_ids)))
        return {row.document_id: row.body for row in rows}

    async def page(self, workspace_id: UUID, *, status: DocumentStatus | None, limit: int,
                   after: tuple[datetime, UUID] | None) -> list[Document]:
        query = select(DocumentRow).where(DocumentRow.workspace_id == workspace_id)
        if status is not None:
            query = query.where(DocumentRow.status == status.value)
        if after is not None:
            query = query.where(tuple_(DocumentRow.created_at, DocumentRow.id) < tuple_(*after))
        query = query.order_by(DocumentRow.created_at.desc(), DocumentRow.id.desc()).limit(limit)
        return [_document(row) for row in (await self._session.execute(query)).scalars()]

    async def save(self, document: Document) -> None:
        values = values_of(document, status=document.status.value)
        values["metadata_"] = values.pop("metadata")
        await self._session.execute(update(DocumentRow).where(DocumentRow.id == document.id).values(**values))

    async def queued_before(self, before: datetime, limit: int) -> list[Document]:
        query = (select(DocumentRow).where(DocumentRow.status == DocumentStatus.QUEUED.value,
                                           DocumentRow.updated_at < before)
                 .order_by(DocumentRow.updated_at).limit(limit))
        return [_document(row) for row in (await self._session.execute(query)).scalars()]

    async def delete(self, document_id: UUID) -> None:
        # Chunks, vectors and the body go by ON DELETE CASCADE, in this same statement's transaction.
        await self._session.execute(delete(DocumentRow).where(DocumentRow.id == document_id))


class PgChunkRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def replace(self, document_id: UUID, chunks: list[StoredChunk]) -> None:
        await self._session.execute(delete(ChunkRow).where(ChunkRow.document_id == document_id))
        if chunks:
            rows = [values_of(chunk, heading_path=list(chunk.heading_path)) for chunk in chunks]
            await self._session.execute(insert(ChunkRow), rows)

    async def without_vectors(self, space: str, *, document_ids: list[UUID] | None, limit: int,
                              after: tuple[UUID, int] | None = None) -> list[StoredChunk]:
        has_vector = select(ChunkEmbeddingRow.chunk_id).where(
            ChunkEmbeddingRow.chunk_id == ChunkRow.id, ChunkEmbeddingRow.space == space).exists()
        query = (select(ChunkRow).join(DocumentRow, DocumentRow.id == ChunkRow.document_id)
                 .where(DocumentRow.status.in_(_LIVE), ~has_vector)
                 .order_by(ChunkRow.document_id, ChunkRow.position).limit(limit))
        if document_ids is not None:
            query = query.where(ChunkRow.document_id.in_(document_ids))
        if after is not None:
            query = query.where(tuple_(ChunkRow.document_id, ChunkRow.position) > tuple_(*after))
        return [_chunk(row) for row in (await self._session.execute(query)).scalars()]

    async def add_vectors(self, space: EmbeddingSpace, vectors: list[tuple[StoredChunk, list[float]]]) -> int:
        for _, vector in vectors:
            if len(vector) != space.dimensions:
                raise ValueError(f"{space.name} takes {space.dimensions} dimensions, got {len(vector)}")
        if not vectors:
            return 0
        ids = [chunk.id for chunk, _ in vectors]
        existing = set((await self._session.execute(select(ChunkRow.id).where(ChunkRow.id.in_(ids))
                                                    .with_for_update(key_share=True))).scalars())
        rows = [{"chunk_id": chunk.id, "space": space.name, "document_id": chunk.document_id,
                 "workspace_id": chunk.workspace_id, "embedding": vector}
                for chunk, vector in vectors if chunk.id in existing]
        if not rows:
            return 0
        result = await self._session.execute(
            pg_insert(ChunkEmbeddingRow).on_conflict_do_nothing().returning(ChunkEmbeddingRow.chunk_id), rows)
        stored = len(result.all())
        if space.status is SpaceStatus.ACTIVE:
            await self._refresh_progress({chunk.document_id for chunk, _ in vectors}, space.name)
        return stored

    async def _refresh_progress(self, document_ids: set[UUID], space: str) -> None:
        embedded = (select(func.count()).select_from(ChunkEmbeddingRow)
                    .where(ChunkEmbeddingRow.document_id == DocumentRow.id, ChunkEmbeddingRow.space == space)
                    .scalar_subquery())
        await self._session.execute(update(DocumentRow).where(DocumentRow.id.in_(document_ids))
                                    .values(embedded_count=embedded))

    async def count_vectors(self, document_id: UUID, space: str) -> int:
        return (await self._session.execute(select(func.count()).select_from(ChunkEmbeddingRow).where(
            ChunkEmbeddingRow.document_id == document_id, ChunkEmbeddingRow.space == space))).scalar_one()

    async def of_document(self, document_id: UUID) -> list[StoredChunk]:
        rows = await self._session.scalars(select(ChunkRow).where(ChunkRow.document_id == document_id)
                                           .order_by(ChunkRow.position))
        return [_chunk(row) for row in rows]

    async def drop_vectors(self, space: str) -> None:
        await self._session.execute(delete(ChunkEmbeddingRow).where(ChunkEmbeddingRow.space == space))
        await self._session.execute(text(f"DROP INDEX IF EXISTS {hnsw_index_name(space)}"))


class PgEmbeddingSpaceRepository:
    def __init__(self, session: AsyncSession, hnsw_m: int = 16, hnsw_ef_construction: int = 64) -> None:
        self._session = session
        self._m = hnsw_m
        self._ef_construction = hnsw_ef_construction

    async def all(self, *, for_update: bool = False) -> list[EmbeddingSpace]:
        query = select(EmbeddingSpaceRow).order_by(EmbeddingSpaceRow.created_at)
        if for_update:
            query = query.with_for_update()
        rows = (await self._session.execute(query.execution_options(populate_existing=True))).scalars()
        return [to_record(row, EmbeddingSpace, status=SpaceStatus(row.status)) for row in rows]

    async def add(self, space: EmbeddingSpace) -> None:
        # Two workers may both find no space on a fresh database: the second waits for the first and adds nothing.
        added = await self._session.execute(pg_insert(EmbeddingSpaceRow).values(
            **values_of(space, status=space.status.value)).on_conflict_do_nothing(index_elements=["name"])
            .returning(EmbeddingSpaceRow.name))
        if added.scalar_one_or_none() is not None:
            await self._ensure_index(space)

    async def save(self, space: EmbeddingSpace) -> None:
        await self._session.execute(update(EmbeddingSpaceRow).where(EmbeddingSpaceRow.name == space.name)
                                    .values(**values_of(space, status=space.status.value)))
        if space.status is not SpaceStatus.RETIRED:
            await self._ensure_index(space)

    async def _ensure_index(self, space: EmbeddingSpace) -> None:
        # Made while the space is empty, it is instant; later inserts keep it up to date.
        await self._session.execute(text(
            f"CREATE INDEX IF NOT EXISTS {hnsw_index_name(space.name)} ON chunk_embeddings "
            f"USING hnsw ((embedding::vector({int(space.dimensions)})) vector_cosine_ops) "
            f"WITH (m = {int(self._m)}, ef_construction = {int(self._ef_construction)}) "
            f"WHERE space = {space_literal(space.name)}"))
