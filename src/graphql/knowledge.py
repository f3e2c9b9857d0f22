"""Knowledge fields: upload (files or a JSON batch), list, read, watch and delete documents; search."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated, Any

import strawberry
from strawberry.file_uploads import Upload
from strawberry.scalars import JSON

from src.core.knowledge.documents import DocumentUpload, batch_from_json, check_metadata
from src.core.knowledge.formats import normalise_content_type
from src.core.knowledge.search import SearchRequest
from src.graphql.context import Info
from src.graphql.errors import (
    InvalidInputError,
    NotFoundError,
    QuotaExceededError,
    UnavailableError,
    answer,
    to_graphql_error,
)
from src.graphql.ids import parse_id
from src.graphql.knowledge_types import (
    DeletedDocument,
    DocumentConnection,
    DocumentInput,
    DocumentStatusEnum,
    DocumentType,
    SearchFilterInput,
    SearchHitType,
    SearchModeEnum,
    SearchResults,
    UploadedDocuments,
)
from src.graphql.permissions import require
from src.ports.identity import Permission
from src.ports.knowledge import DocumentStatus, SearchFilters, SearchMode
from src.ports.shared import DomainError, InvalidInput

UploadResult = Annotated[
    UploadedDocuments | InvalidInputError | QuotaExceededError | UnavailableError,
    strawberry.union("UploadDocumentsResult")]
DocumentResult = Annotated[
    DocumentType | NotFoundError | InvalidInputError | UnavailableError,
    strawberry.union("DocumentResult")]
DocumentsResult = Annotated[
    DocumentConnection | InvalidInputError | UnavailableError,
    strawberry.union("DocumentsResult")]
DeleteResult = Annotated[
    DeletedDocument | NotFoundError | InvalidInputError | UnavailableError,
    strawberry.union("DeleteDocumentResult")]
SearchResult = Annotated[SearchResults | InvalidInputError | UnavailableError, strawberry.union("SearchResult")]
JSON_BATCH_TYPES = {"application/json", "application/x-ndjson", "application/jsonl", "application/json-lines"}


async def _read(file: Any, limit: int) -> bytes:
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise InvalidInput(f"the file is larger than {limit} bytes", field="file")
    return data


def _filters(raw: SearchFilterInput | None) -> SearchFilters:
    if raw is None:
        return SearchFilters()
    ids = tuple(parse_id(value, "filters.documentIds") for value in raw.document_ids or ())
    return SearchFilters(document_ids=ids, metadata=check_metadata(raw.metadata, "filters.metadata"))


@strawberry.type
class KnowledgeQuery:
    @strawberry.field(extensions=require(Permission.CONTENT_READ, "workspace_id"),
                      description="Documents of a workspace, newest first.")
    async def documents(self, info: Info, workspace_id: strawberry.ID, status: DocumentStatusEnum | None = None,
                        first: int = 20, after: str | None = None) -> DocumentsResult:
        caller, listing = await info.context.principal(), info.context.services.list_documents()
        wanted = DocumentStatus(status.value) if status else None
        return await answer(lambda: listing.execute(caller, parse_id(workspace_id, "workspaceId"), status=wanted,
                                                    first=first, after=after), DocumentConnection.of)

    @strawberry.field(extensions=require(Permission.CONTENT_READ, "workspace_id"))
    async def document(self, info: Info, workspace_id: strawberry.ID, id: strawberry.ID) -> DocumentResult:
        caller, get = await info.context.principal(), info.context.services.get_document()
        return await answer(lambda: get.execute(caller, parse_id(workspace_id, "workspaceId"), parse_id(id, "id")),
                            DocumentType.of)

    @strawberry.field(extensions=require(Permission.CONTENT_READ, "workspace_id"),
                      description="Chunks of this workspace's ready documents that best match the query.")
    async def search(self, info: Info, workspace_id: strawberry.ID, query: str,
                     mode: SearchModeEnum = SearchModeEnum.HYBRID, k: int = 10,
                     filters: SearchFilterInput | None = None) -> SearchResult:
        caller, search = await info.context.principal(), info.context.services.search_workspace()

        async def run():
            request = SearchRequest(parse_id(workspace_id, "workspaceId"), query, SearchMode(mode.value), k,
                                    _filters(filters))
            return await search.execute(caller, request)

        return await answer(run, lambda hits: SearchResults(hits=[SearchHitType.of(hit) for hit in hits]))


@strawberry.type
class KnowledgeMutation:
    @strawberry.mutation(extensions=require(Permission.CONTENT_WRITE, "workspace_id"),
                         description="One file: text, Markdown, HTML or PDF. Same bytes twice = no-op.")
    async def upload_document(self, info: Info, workspace_id: strawberry.ID, file: Upload, title: str | None = None,
                              source_name: Annotated[str | None, strawberry.argument(
                                  name="source", description="Where it came from; defaults to the file name.")] = None,
                              metadata: JSON | None = None) -> UploadResult:
        services = info.context.services
        limit = services.knowledge().max_document_bytes

        async def run():
            data = await _read(file, limit)
            name = getattr(file, "filename", None)
            upload = DocumentUpload(title or name or "Untitled", data,
                                    normalise_content_type(getattr(file, "content_type", None), name),
                                    source_name or name, metadata)
            return await services.upload_documents().execute(await info.context.principal(),
                                                             parse_id(workspace_id, "workspaceId"), [upload])

        return await answer(run, UploadedDocuments.of)

    @strawberry.mutation(extensions=require(Permission.CONTENT_WRITE, "workspace_id"),
                         description="A batch: `documents` inline, or a JSON array / JSON Lines `file` of "
                                     "{title, text, contentType?, source?, metadata?}. All or nothing.")
    async def upload_documents(self, info: Info, workspace_id: strawberry.ID,
                               documents: list[DocumentInput] | None = None, file: Upload | None = None
                               ) -> UploadResult:
        services = info.context.services
        config = services.knowledge()

        async def run():
            uploads = [DocumentUpload(item.title, item.text.encode("utf-8"), item.content_type, item.source,
                                      item.metadata) for item in documents or ()]
            if file is not None:
                kind = normalise_content_type(getattr(file, "content_type", None))
                if kind not in JSON_BATCH_TYPES and not (getattr(file, "filename", "") or "").endswith(
                        (".json", ".jsonl", ".ndjson")):
                    raise InvalidInput("a batch file must be JSON or JSON Lines", field="file")
                uploads += batch_from_json(await _read(file, config.max_document_bytes))
            return await services.upload_documents().execute(await info.context.principal(),
                                                             parse_id(workspace_id, "workspaceId"), uploads)

        return await answer(run, UploadedDocuments.of)

    @strawberry.mutation(extensions=require(Permission.CONTENT_WRITE, "workspace_id"),
                         description="Removes the document with its chunks and vectors.")
    async def delete_document(self, info: Info, workspace_id: strawberry.ID, id: strawberry.ID) -> DeleteResult:
        caller, delete = await info.context.principal(), info.context.services.delete_document()
        return await answer(lambda: delete.execute(caller, parse_id(workspace_id, "workspaceId"), parse_id(id, "id")),
                            lambda document: DeletedDocument(id=strawberry.ID(str(document.id))))


@strawberry.type
class KnowledgeSubscription:
    @strawberry.subscription(extensions=require(Permission.CONTENT_READ, "workspace_id"),
                             description="The document now and on every change, until ready or failed.")
    async def document(self, info: Info, workspace_id: strawberry.ID,
                       id: strawberry.ID) -> AsyncGenerator[DocumentResult, None]:
        try:
            caller, watch = await info.context.principal(), info.context.services.watch_document()
            async for document in watch.execute(caller, parse_id(workspace_id, "workspaceId"), parse_id(id, "id")):
                yield DocumentType.of(document)
        except DomainError as exc:
            yield to_graphql_error(exc)
