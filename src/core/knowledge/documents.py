"""Documents: upload (deduplicated by content hash, ingestion queued after commit), list, read, watch, delete."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from src.core.knowledge.config import KnowledgeConfig
from src.core.knowledge.formats import SUPPORTED_TYPES, normalise_content_type
from src.core.shared.watching import watch
from src.ports.billing import EntitlementChecker, QuotaExceeded
from src.ports.identity import AccessPolicy, Permission, Principal
from src.ports.knowledge import Document, DocumentPage, DocumentStatus, KnowledgeUnitOfWork
from src.ports.shared import Clock, InvalidInput, Job, NotFound

INGEST_JOB = "knowledge.ingest_documents"
GIVE_UP_JOB = "knowledge.give_up_ingestion"
MAX_TITLE = 300
MAX_METADATA_BYTES = 16_000
MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class DocumentUpload:
    title: str
    data: bytes
    content_type: str
    source: str | None = None
    metadata: Any = None  # as the client sent it: UploadDocuments checks it (a JSON object, bounded)


@dataclass(frozen=True, slots=True)
class Uploaded:
    document: Document
    duplicate: bool  # the workspace already had this content: nothing was stored or queued


def parse_id(raw: str, field_name: str) -> UUID:
    try:
        return UUID(str(raw))
    except ValueError:
        raise InvalidInput(f"{field_name} must be a UUID", field=field_name) from None


def check_metadata(metadata: Any, field_name: str = "metadata") -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidInput("metadata must be a JSON object", field=field_name)
    if len(json.dumps(metadata)) > MAX_METADATA_BYTES:
        raise InvalidInput(f"metadata is larger than {MAX_METADATA_BYTES} bytes", field=field_name)
    return metadata


def batch_from_json(data: bytes) -> list[DocumentUpload]:
    """A JSON array or JSON Lines of {title, text, contentType?, source?, metadata?} objects."""
    try:
        text = data.decode("utf-8").strip()
        items = json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines()
                                                                if line.strip()]
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"the batch is not valid JSON or JSON Lines: {exc}", field="file") from None
    uploads = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise InvalidInput(f"batch item {number} needs a string \"text\"", field="file")
        uploads.append(DocumentUpload(
            title=str(item.get("title") or f"Document {number}"),
            data=item["text"].encode("utf-8"),
            content_type=str(item.get("contentType") or item.get("content_type") or "text/plain"),
            source=item.get("source"),
            metadata=check_metadata(item.get("metadata"), f"file[{number}].metadata"),
        ))
    return uploads


def _cursor(document: Document) -> str:
    raw = f"{document.created_at.isoformat()}|{document.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _parse_cursor(cursor: str | None) -> tuple[datetime, UUID] | None:
    if not cursor:
        return None
    try:
        created, document_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(created), UUID(document_id)
    except ValueError:
        raise InvalidInput("the cursor is not one this API returned", field="after") from None


def _within_quota(documents: int, size: int, max_documents: int, max_bytes: int) -> None:
    """Raises (so the transaction stores nothing) when the upload would pass a limit of the plan."""
    if documents > max_documents:
        raise QuotaExceeded(f"the workspace's plan allows {max_documents} documents; delete some or "
                            "upgrade the plan", limit="max_documents")
    if size > max_bytes:
        raise QuotaExceeded(f"the workspace's plan allows {max_bytes} bytes of documents; delete some or "
                            "upgrade the plan", limit="max_storage_bytes")


class UploadDocuments:
    """- Validates every upload first: one bad item rejects the batch and stores nothing.
    - Content already in the workspace (same bytes) is a no-op that returns the existing document.
    - New documents are stored `queued` with their bytes; ingestion jobs go out after the commit.
    - The plan's document count and storage limits hold, also against concurrent uploads.
    - The caller needs content:write in the workspace; the documents are theirs (`created_by`).
    """

    def __init__(self, uow: Callable[[], KnowledgeUnitOfWork], clock: Clock, config: KnowledgeConfig,
                 entitlements: EntitlementChecker, access: AccessPolicy, jobs_per_batch: int = 16) -> None:
        self._uow = uow
        self._access = access
        self._clock = clock
        self._config = config
        self._entitlements = entitlements
        self._jobs_per_batch = jobs_per_batch

    def _check(self, index: int, upload: DocumentUpload) -> DocumentUpload:
        where = f"documents[{index}]"
        title = upload.title.strip()
        if not title or len(title) > MAX_TITLE:
            raise InvalidInput(f"{where}: a title needs 1 to {MAX_TITLE} characters", field="title")
        content_type = normalise_content_type(upload.content_type)
        if content_type not in SUPPORTED_TYPES:
            raise InvalidInput(f"{where}: unsupported content type {upload.content_type!r}; use one of "
                               f"{', '.join(SUPPORTED_TYPES)}", field="contentType")
        if not upload.data:
            raise InvalidInput(f"{where}: the document is empty", field="file")
        if len(upload.data) > self._config.max_document_bytes:
            raise InvalidInput(f"{where}: larger than {self._config.max_document_bytes} bytes", field="file")
        return DocumentUpload(title, upload.data, content_type, upload.source,
                              check_metadata(upload.metadata))

    async def execute(self, caller: Principal | None, workspace_id: UUID,
                      uploads: list[DocumentUpload]) -> list[Uploaded]:
        await self._access.require(caller, Permission.CONTENT_WRITE, workspace_id)
        created_by = caller.user_id if caller else None  # None: the operator's own tools (the evaluation)
        if not uploads:
            raise InvalidInput("nothing to upload", field="documents")
        if len(uploads) > self._config.max_batch_documents:
            raise InvalidInput(f"at most {self._config.max_batch_documents} documents per batch", field="documents")
        checked = [self._check(index, upload) for index, upload in enumerate(uploads)]
        limits = (await self._entitlements.entitlement(workspace_id)).limits
        now = self._clock.now()
        results: list[Uploaded] = []
        async with self._uow() as uow:
            held_documents, held_bytes = await uow.documents.usage(workspace_id)
            for upload in checked:
                document = Document(
                    id=uuid.uuid4(), workspace_id=workspace_id, title=upload.title, source=upload.source,
                    content_type=upload.content_type, content_hash=hashlib.sha256(upload.data).hexdigest(),
                    byte_size=len(upload.data), metadata=upload.metadata, created_by=created_by,
                    created_at=now, updated_at=now)
                if await uow.documents.add(document, upload.data):
                    results.append(Uploaded(document, duplicate=False))
                else:
                    existing = await uow.documents.by_hash(workspace_id, document.content_hash)
                    assert existing is not None  # the add found these bytes there
                    results.append(Uploaded(existing, duplicate=True))
            added = [item.document for item in results if not item.duplicate]
            _within_quota(held_documents + len(added), held_bytes + sum(doc.byte_size for doc in added),
                          limits.max_documents, limits.max_storage_bytes)
            new_ids = [str(document.id) for document in added]
            for start in range(0, len(new_ids), self._jobs_per_batch):
                uow.defer(Job(INGEST_JOB, {"document_ids": new_ids[start:start + self._jobs_per_batch]}))
            await uow.commit()
        return results


class GetDocument:
    def __init__(self, uow: Callable[[], KnowledgeUnitOfWork], access: AccessPolicy) -> None:
        self._uow = uow
        self._access = access

    async def execute(self, caller: Principal | None, workspace_id: UUID, document_id: UUID) -> Document:
        await self._access.require(caller, Permission.CONTENT_READ, workspace_id)
        async with self._uow() as uow:
            document = await uow.documents.get(document_id)
        if document is None or document.workspace_id != workspace_id:
            raise NotFound("no such document in this workspace")
        return document


class ListDocuments:
    def __init__(self, uow: Callable[[], KnowledgeUnitOfWork], access: AccessPolicy) -> None:
        self._uow = uow
        self._access = access

    async def execute(self, caller: Principal | None, workspace_id: UUID, *, status: DocumentStatus | None = None,
                      first: int = 20, after: str | None = None) -> DocumentPage:
        await self._access.require(caller, Permission.CONTENT_READ, workspace_id)
        if not 1 <= first <= MAX_PAGE:
            raise InvalidInput(f"first must be between 1 and {MAX_PAGE}", field="first")
        async with self._uow() as uow:
            found = await uow.documents.page(workspace_id, status=status, limit=first + 1,
                                             after=_parse_cursor(after))
        page = found[:first]
        return DocumentPage(page, _cursor(page[-1]) if len(found) > first else None)


class DeleteDocument:
    """- Removes the document, its bytes, chunks and vectors, and its part of the knowledge graph, in one
    transaction."""

    def __init__(self, uow: Callable[[], KnowledgeUnitOfWork], access: AccessPolicy) -> None:
        self._uow = uow
        self._access = access

    async def execute(self, caller: Principal | None, workspace_id: UUID, document_id: UUID) -> Document:
        await self._access.require(caller, Permission.CONTENT_WRITE, workspace_id)
        async with self._uow() as uow:
            document = await uow.documents.get(document_id, for_update=True)
            if document is None or document.workspace_id != workspace_id:
                raise NotFound("no such document in this workspace")
            await uow.graph.remove_document(workspace_id, document_id)
            await uow.documents.delete(document_id)
            await uow.commit()
        return document


class WatchDocument:
    """- Yields the document now and on every change until it is ready or failed (or `timeout` passes).

    Each look is its own short read: nothing is held open between looks.
    """

    def __init__(self, get: GetDocument, interval: float = 0.25) -> None:
        self._get = get
        self._interval = interval

    async def execute(self, caller: Principal | None, workspace_id: UUID, document_id: UUID,
                      timeout: float = 600.0) -> AsyncIterator[Document]:
        async for document in watch(lambda: self._get.execute(caller, workspace_id, document_id),
                                    lambda document: document.status in (DocumentStatus.READY, DocumentStatus.FAILED),
                                    interval=self._interval, timeout=timeout):
            yield document
