"""Search reads in Postgres: pgvector HNSW for vectors, BM25 (pg_textsearch) or ts_rank for keywords.

Every statement carries the workspace (and the caller's filters) in its WHERE clause, and reads only
chunks of ready documents.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from src.adapters.postgres.base import BM25_INDEX
from src.adapters.postgres.knowledge.repositories import space_literal
from src.adapters.postgres.knowledge.tables import SEARCH_LANGUAGE
from src.ports.knowledge import Candidate, ChunkView, EmbeddingSpace, SearchFilters

FRAGMENT_DELIMITER = " … "
# Any query word may match (OR), as keyword retrieval should; plainto_tsquery alone would AND them.
_OR_QUERY = f"replace(plainto_tsquery('{SEARCH_LANGUAGE}', :query)::text, ' & ', ' | ')::tsquery"
_ESCAPED_TEXT = "replace(replace(replace(c.text, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')"
_HEADLINE_OPTIONS = (f"MaxFragments=3, MinWords=8, MaxWords=30, StartSel=<mark>, StopSel=</mark>, "
                     f"FragmentDelimiter=\"{FRAGMENT_DELIMITER}\"")


@dataclass(slots=True)
class PgSearchSettings:
    ef_search: int = 100
    iterative_scan: str = "relaxed_order"  # keeps filtered HNSW scans from running short of rows
    _bm25: dict[str, bool] = field(default_factory=dict)  # detected once per process


def _filters(filters: SearchFilters, params: dict) -> str:
    clauses = []
    if filters.document_ids:
        params["document_ids"] = list(filters.document_ids)
        clauses.append("AND d.id = ANY(:document_ids)")
    if filters.metadata:
        params["metadata"] = json.dumps(filters.metadata)
        clauses.append("AND d.metadata @> CAST(:metadata AS jsonb)")
    return " ".join(clauses)


class PgSearchIndex:
    def __init__(self, session: AsyncSession, settings: PgSearchSettings) -> None:
        self._session = session
        self._settings = settings

    async def vector_candidates(self, workspace_id: UUID, space: EmbeddingSpace, vector: list[float], limit: int,
                                filters: SearchFilters) -> list[Candidate]:
        dims = int(space.dimensions)
        ef_search = max(self._settings.ef_search, limit)  # ef_search caps the rows one index scan returns
        await self._session.execute(text("SELECT set_config('hnsw.ef_search', :ef, true), "
                                         "set_config('hnsw.iterative_scan', :scan, true)"),
                                    {"ef": str(ef_search), "scan": self._settings.iterative_scan})
        params = {"workspace_id": workspace_id, "vector": str(vector), "limit": limit}
        distance = f"e.embedding::vector({dims}) <=> CAST(CAST(:vector AS text) AS vector({dims}))"
        rows = await self._session.execute(text(
            f"SELECT e.chunk_id, 1 - ({distance}) AS score FROM chunk_embeddings e "
            f"JOIN documents d ON d.id = e.document_id "
            f"WHERE e.space = {space_literal(space.name)} AND e.workspace_id = :workspace_id "
            f"AND d.status = 'ready' {_filters(filters, params)} "
            f"ORDER BY {distance} LIMIT :limit"), params)
        return [Candidate(row.chunk_id, float(row.score)) for row in rows]

    async def keyword_candidates(self, workspace_id: UUID, query: str, limit: int,
                                 filters: SearchFilters) -> list[Candidate]:
        params = {"workspace_id": workspace_id, "query": query, "limit": limit}
        scope = f"c.workspace_id = :workspace_id AND d.status = 'ready' {_filters(filters, params)}"
        if await self._has_bm25():
            score = f"c.search_text <@> to_bm25query(:query, '{BM25_INDEX}')"  # negative BM25: lower is better
            statement = (f"SELECT c.id, -({score}) AS score FROM chunks c JOIN documents d ON d.id = c.document_id "
                         f"WHERE {scope} ORDER BY {score} LIMIT :limit")
        else:
            statement = (f"SELECT c.id, ts_rank(c.search_vector, q.query) AS score "
                         f"FROM chunks c JOIN documents d ON d.id = c.document_id, (SELECT {_OR_QUERY} AS query) q "
                         f"WHERE c.search_vector @@ q.query AND {scope} ORDER BY score DESC LIMIT :limit")
        rows = await self._session.execute(text(statement), params)
        return [Candidate(row.id, float(row.score)) for row in rows if row.score > 0]

    async def views(self, workspace_id: UUID, chunk_ids: list[UUID], query: str) -> dict[UUID, ChunkView]:
        if not chunk_ids:
            return {}
        rows = await self._session.execute(text(
            f"SELECT c.id, c.document_id, d.title, c.position, c.heading_path, c.text, "
            f"ts_headline('{SEARCH_LANGUAGE}', {_ESCAPED_TEXT}, q.query, '{_HEADLINE_OPTIONS}') AS headline "
            f"FROM chunks c JOIN documents d ON d.id = c.document_id, (SELECT {_OR_QUERY} AS query) q "
            f"WHERE c.id = ANY(:ids) AND c.workspace_id = :workspace_id"),
            {"ids": chunk_ids, "workspace_id": workspace_id, "query": query})
        return {row.id: ChunkView(row.id, row.document_id, row.title, row.position, tuple(row.heading_path),
                                  row.text, _highlights(row.headline)) for row in rows}

    async def searchable(self, workspace_id: UUID, chunk_ids: list[UUID], filters: SearchFilters) -> set[UUID]:
        if not chunk_ids:
            return set()
        params = {"ids": chunk_ids, "workspace_id": workspace_id}
        rows = await self._session.execute(text(
            f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id = ANY(:ids) "
            f"AND c.workspace_id = :workspace_id AND d.status = 'ready' {_filters(filters, params)}"), params)
        return {row.id for row in rows}

    async def _has_bm25(self) -> bool:
        cache = self._settings._bm25
        if "found" not in cache:
            found = await self._session.execute(text("SELECT 1 FROM pg_indexes WHERE indexname = :name"),
                                                {"name": BM25_INDEX})
            cache["found"] = found.first() is not None
        return cache["found"]


def _highlights(headline: str | None) -> tuple[str, ...]:
    if not headline or "<mark>" not in headline:
        return ()
    return tuple(part for part in headline.split(FRAGMENT_DELIMITER) if "<mark>" in part)
