"""GraphQL types of the knowledge module: documents, uploads and search hits."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry.scalars import JSON

from src.core.knowledge.documents import Uploaded
from src.ports.knowledge import Document, DocumentPage, SearchHit


@strawberry.enum(name="DocumentStatus")
class DocumentStatusEnum(Enum):
    QUEUED = "queued"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


@strawberry.enum(name="SearchMode")
class SearchModeEnum(Enum):
    VECTOR = "vector"
    KEYWORD = "keyword"
    HYBRID = "hybrid"
    GRAPH = "graph"


@strawberry.type(name="Document")
class DocumentType:
    id: strawberry.ID
    workspace_id: strawberry.ID
    title: str
    source: str | None
    content_type: str
    byte_size: int
    metadata: JSON
    status: DocumentStatusEnum
    error: str | None = strawberry.field(description="Why ingestion failed, readable by a person.")
    chunk_count: int
    embedded_count: int
    progress: float = strawberry.field(description="0 to 1: share of chunks embedded.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, document: Document) -> DocumentType:
        progress = 1.0 if document.status.value == "ready" else (
            document.embedded_count / document.chunk_count if document.chunk_count else 0.0)
        return cls(id=strawberry.ID(str(document.id)), workspace_id=strawberry.ID(str(document.workspace_id)),
                   title=document.title, source=document.source, content_type=document.content_type,
                   byte_size=document.byte_size, metadata=document.metadata,
                   status=DocumentStatusEnum(document.status.value), error=document.error,
                   chunk_count=document.chunk_count, embedded_count=document.embedded_count, progress=progress,
                   created_at=document.created_at, updated_at=document.updated_at)


@strawberry.type
class UploadedDocument:
    document: DocumentType
    duplicate: bool = strawberry.field(description="The workspace already had these bytes; nothing was queued.")


@strawberry.type
class UploadedDocuments:
    documents: list[UploadedDocument]

    @classmethod
    def of(cls, uploaded: list[Uploaded]) -> UploadedDocuments:
        return cls(documents=[UploadedDocument(document=DocumentType.of(item.document), duplicate=item.duplicate)
                              for item in uploaded])


@strawberry.type
class DocumentConnection:
    items: list[DocumentType]
    next_cursor: str | None = strawberry.field(description="Pass as `after` for the next page; null at the end.")

    @classmethod
    def of(cls, page: DocumentPage) -> DocumentConnection:
        return cls(items=[DocumentType.of(document) for document in page.documents], next_cursor=page.next_cursor)


@strawberry.type
class DeletedDocument:
    id: strawberry.ID


@strawberry.input
class DocumentInput:
    title: str
    text: str
    content_type: str = "text/plain"
    source: str | None = None
    metadata: JSON | None = None


@strawberry.input
class SearchFilterInput:
    document_ids: list[strawberry.ID] | None = None
    metadata: JSON | None = strawberry.field(default=None,
                                             description="Only documents whose metadata contains all of these.")


@strawberry.type(name="SearchHit")
class SearchHitType:
    chunk_id: strawberry.ID
    document_id: strawberry.ID
    document_title: str
    position: int
    heading_path: list[str]
    text: str
    score: float
    vector_score: float | None
    keyword_score: float | None
    highlights: list[str] = strawberry.field(
        description="Fragments with matched words in <mark></mark>; the rest of the text is HTML-escaped.")

    @classmethod
    def of(cls, hit: SearchHit) -> SearchHitType:
        chunk = hit.chunk
        return cls(chunk_id=strawberry.ID(str(chunk.chunk_id)), document_id=strawberry.ID(str(chunk.document_id)),
                   document_title=chunk.document_title, position=chunk.position,
                   heading_path=list(chunk.heading_path), text=chunk.text, score=hit.score,
                   vector_score=hit.vector_score, keyword_score=hit.keyword_score, highlights=list(chunk.highlights))


@strawberry.type
class SearchResults:
    hits: list[SearchHitType]
