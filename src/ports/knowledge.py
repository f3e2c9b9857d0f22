"""Knowledge ports: documents, their chunks and vectors, search, embedders and readers of binary formats."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from src.ports.graph import GraphStore
from src.ports.metering import UsageLedger
from src.ports.shared import DomainError, UnitOfWork


class EmbeddingUnavailable(DomainError):
    """The embedding model cannot answer now (not installed, provider down): retry later."""

    code = "embedding_unavailable"


class UnreadableDocument(DomainError):
    """The bytes are not a readable document of the declared type; the document fails with this reason."""

    code = "unreadable_document"


class DocumentStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


class SearchMode(StrEnum):
    VECTOR = "vector"
    KEYWORD = "keyword"
    HYBRID = "hybrid"
    GRAPH = "graph"  # hybrid, then expanded through the knowledge graph and re-ranked


class SpaceStatus(StrEnum):
    BUILDING = "building"  # being filled by a re-embedding job; search does not use it yet
    ACTIVE = "active"  # the one search uses
    RETIRED = "retired"


@dataclass(frozen=True, slots=True)
class Document:
    id: UUID
    workspace_id: UUID
    title: str
    source: str | None
    content_type: str
    content_hash: str
    byte_size: int
    metadata: dict[str, Any]
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime
    status: DocumentStatus = DocumentStatus.QUEUED
    error: str | None = None
    chunk_count: int = 0
    embedded_count: int = 0


@dataclass(frozen=True, slots=True)
class StoredChunk:
    id: UUID
    document_id: UUID
    workspace_id: UUID
    position: int
    text: str
    heading_path: tuple[str, ...]
    search_text: str  # what is embedded and keyword-indexed: title and headings, then the text


@dataclass(frozen=True, slots=True)
class EmbeddingSpace:
    """The vectors of one embedding model. Search reads exactly one space: the active one."""

    name: str
    dimensions: int
    status: SpaceStatus
    created_at: datetime
    activated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SearchFilters:
    document_ids: tuple[UUID, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)  # documents whose metadata contains all of these


@dataclass(frozen=True, slots=True)
class Candidate:
    chunk_id: UUID
    score: float  # higher is better; scales differ between retrievers


@dataclass(frozen=True, slots=True)
class ChunkView:
    """A chunk as search shows it: its text, its document, and fragments that match the query."""

    chunk_id: UUID
    document_id: UUID
    document_title: str
    position: int
    heading_path: tuple[str, ...]
    text: str
    highlights: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SearchHit:
    chunk: ChunkView
    score: float
    vector_score: float | None
    keyword_score: float | None


@dataclass(frozen=True, slots=True)
class DocumentPage:
    documents: list[Document]
    next_cursor: str | None


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length vectors. Every stored vector is tagged with `model_name`, so a model
    change means re-embedding, never mixing vectors of two models in one index."""

    model_name: str
    dimensions: int

    async def embed_documents(self, texts: list[str]) -> list[list[float]]: ...

    async def embed_query(self, text: str) -> list[float]: ...


@runtime_checkable
class Embedders(Protocol):
    """The configured model, and an embedder for any space that still holds vectors."""

    def configured(self) -> Embedder: ...

    def for_space(self, name: str) -> Embedder: ...


@runtime_checkable
class PdfReader(Protocol):
    def pages(self, data: bytes) -> list[str]:
        """Text of each page; raises UnreadableDocument on a broken or encrypted file."""
        ...


@runtime_checkable
class DocumentRepository(Protocol):
    async def add(self, document: Document, body: bytes) -> bool:
        """False, storing nothing, when the workspace already has a document with this content hash."""
        ...

    async def by_hash(self, workspace_id: UUID, content_hash: str) -> Document | None: ...

    async def usage(self, workspace_id: UUID) -> tuple[int, int]:
        """(documents, bytes) the workspace holds, after serialising with other uploads to it until the
        transaction ends, so quota checks cannot race."""
        ...

    async def get(self, document_id: UUID, *, for_update: bool = False) -> Document | None: ...

    async def body(self, document_id: UUID) -> bytes: ...

    async def get_many(self, document_ids: list[UUID], *, for_update: bool = False) -> dict[UUID, Document]:
        """Those of `document_ids` that exist, in one read (locked, in id order, when `for_update`)."""
        ...

    async def bodies(self, document_ids: list[UUID]) -> dict[UUID, bytes]: ...

    async def page(self, workspace_id: UUID, *, status: DocumentStatus | None, limit: int,
                   after: tuple[datetime, UUID] | None) -> list[Document]: ...

    async def save(self, document: Document) -> None: ...

    async def queued_before(self, before: datetime, limit: int) -> list[Document]:
        """Documents still queued, last changed before `before`, oldest first (any workspace)."""
        ...

    async def delete(self, document_id: UUID) -> None:
        """Removes the document with its body, chunks and vectors."""
        ...


@runtime_checkable
class ChunkRepository(Protocol):
    async def replace(self, document_id: UUID, chunks: list[StoredChunk]) -> None: ...

    async def without_vectors(self, space: str, *, document_ids: list[UUID] | None, limit: int,
                              after: tuple[UUID, int] | None = None) -> list[StoredChunk]:
        """Chunks of processing or ready documents with no vector in `space` yet (all, or of these ids), in
        (document id, position) order, from past `after` (a previous page's last chunk) when given."""
        ...

    async def add_vectors(self, space: EmbeddingSpace, vectors: list[tuple[StoredChunk, list[float]]]) -> int:
        """Stores vectors and returns how many were new; a chunk that already has one in this space keeps it
        (a retried batch is a no-op) and chunks deleted meanwhile are skipped."""
        ...

    async def count_vectors(self, document_id: UUID, space: str) -> int: ...

    async def of_document(self, document_id: UUID) -> list[StoredChunk]:
        """In document order."""
        ...

    async def drop_vectors(self, space: str) -> None: ...


@runtime_checkable
class EmbeddingSpaceRepository(Protocol):
    async def all(self, *, for_update: bool = False) -> list[EmbeddingSpace]: ...

    async def add(self, space: EmbeddingSpace) -> None:
        """Registers the space and prepares its vector index; a space of that name already there is kept."""
        ...

    async def save(self, space: EmbeddingSpace) -> None: ...


@runtime_checkable
class SearchIndex(Protocol):
    """Reads candidates for one workspace, always with the workspace (and filters) inside the SQL."""

    async def vector_candidates(self, workspace_id: UUID, space: EmbeddingSpace, vector: list[float], limit: int,
                                filters: SearchFilters) -> list[Candidate]: ...

    async def keyword_candidates(self, workspace_id: UUID, query: str, limit: int,
                                 filters: SearchFilters) -> list[Candidate]: ...

    async def views(self, workspace_id: UUID, chunk_ids: list[UUID], query: str) -> dict[UUID, ChunkView]: ...

    async def searchable(self, workspace_id: UUID, chunk_ids: list[UUID], filters: SearchFilters) -> set[UUID]:
        """Those of the chunks a search with these filters may answer (ready documents that match)."""
        ...


class KnowledgeUnitOfWork(UnitOfWork, Protocol):
    documents: DocumentRepository
    chunks: ChunkRepository
    spaces: EmbeddingSpaceRepository
    search: SearchIndex
    graph: GraphStore
    usage: UsageLedger  # model spend of LLM extraction counts toward the workspace's budget


@runtime_checkable
class KeywordIndex(Protocol):
    async def repair_if_silent(self) -> bool:
        """Rebuilds the keyword index when it answers nothing for a text it holds (True when it did)."""
        ...
