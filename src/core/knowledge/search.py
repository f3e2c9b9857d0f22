"""Search in one workspace: vector, keyword, or both fused; hits carry text, document and highlights."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from src.core.knowledge.config import KnowledgeConfig
from src.core.knowledge.fusion import Fused, reciprocal_rank, single, weighted_zscore, with_graph
from src.core.knowledge.graph_queries import expansion_scores
from src.core.knowledge.spaces import active_of
from src.ports.identity import AccessPolicy, Permission, Principal
from src.ports.knowledge import (
    Candidate,
    Embedders,
    EmbeddingUnavailable,
    KnowledgeUnitOfWork,
    SearchFilters,
    SearchHit,
    SearchMode,
)
from src.ports.shared import InvalidInput
from src.ports.telemetry import Telemetry


@dataclass(frozen=True, slots=True)
class SearchRequest:
    workspace_id: UUID
    query: str
    mode: SearchMode = SearchMode.HYBRID
    k: int = 10
    filters: SearchFilters = SearchFilters()


class Search:
    """The search itself, for callers already authorised (the chat's retrieval, the evaluation); a person's
    search goes through SearchWorkspace.
    - Validates the query (non-empty, bounded) and k (1..max_k).
    - Embeds the query with the active space's model, with no connection held, then reads candidates of
    each retriever (workspace and filters inside the SQL), fuses them and returns the top k with highlights.
    - Before any document is ingested there is no active space: vector-side search answers nothing.
    - When the embedding model is unavailable, hybrid search answers from keywords alone; vector search
    answers EmbeddingUnavailable.
    - Graph search: hybrid, then the chunks the knowledge graph links to the top hits join the ranking."""

    def __init__(self, uow: Callable[[], KnowledgeUnitOfWork], reads: Callable[[], KnowledgeUnitOfWork],
                 embedders: Embedders, config: KnowledgeConfig, telemetry: Telemetry) -> None:
        """`reads`: units of work without a transaction (each read one round trip), for what needs none: a
        vector search sets its index's scan options for its own transaction, a keyword search does not."""
        self._uow = uow
        self._reads = reads
        self._embedders = embedders
        self._config = config
        self._telemetry = telemetry

    def _check(self, request: SearchRequest) -> str:
        query = request.query.strip()
        if not query:
            raise InvalidInput("the query is empty", field="query")
        if len(query) > self._config.max_query_chars:
            raise InvalidInput(f"the query is longer than {self._config.max_query_chars} characters", field="query")
        if not 1 <= request.k <= self._config.max_k:
            raise InvalidInput(f"k must be between 1 and {self._config.max_k}", field="k")
        return query

    async def execute(self, request: SearchRequest) -> list[SearchHit]:
        query = self._check(request)
        with self._telemetry.span("retrieval", {"keel.retrieval.mode": request.mode.value,
                                                "keel.retrieval.k": request.k}) as span:
            started = time.monotonic()
            hits, candidates = await self._run(request, query)
            self._telemetry.retrieval(request.mode.value, time.monotonic() - started, candidates, len(hits))
            span.set("keel.retrieval.candidates", candidates)
            span.set("keel.retrieval.results", len(hits))
        return hits

    async def _run(self, request: SearchRequest, query: str) -> tuple[list[SearchHit], int]:
        uses_vectors = request.mode is not SearchMode.KEYWORD
        uses_keywords = request.mode is not SearchMode.VECTOR
        limit = max(request.k, self._config.candidates)
        space = vector = None
        if uses_vectors:
            async with self._reads() as uow:
                space = active_of(await uow.spaces.all())
            if space is not None:
                try:
                    with self._telemetry.span(f"embeddings {space.name}", {"gen_ai.operation.name": "embeddings",
                                                                           "gen_ai.request.model": space.name}):
                        vector = await self._embedders.for_space(space.name).embed_query(query)
                except EmbeddingUnavailable:
                    if request.mode is SearchMode.VECTOR:
                        raise
                    vector = None  # hybrid degrades to keyword-only rather than failing
        async with (self._uow() if uses_vectors else self._reads()) as uow:
            by_vector = (await uow.search.vector_candidates(request.workspace_id, space, vector, limit,
                                                            request.filters)
                         if space is not None and vector is not None else [])
            by_keyword = (await uow.search.keyword_candidates(request.workspace_id, query, limit, request.filters)
                          if uses_keywords else [])
            ranked = self._fuse(request.mode, by_vector, by_keyword)
            if request.mode is SearchMode.GRAPH:
                ranked = await self._through_graph(uow, request, ranked)
            ranked = ranked[:request.k]
            views = await uow.search.views(request.workspace_id, [item.chunk_id for item in ranked], query)
        return ([SearchHit(views[item.chunk_id], item.score, item.vector_score, item.keyword_score)
                 for item in ranked if item.chunk_id in views], len(by_vector) + len(by_keyword))

    async def _through_graph(self, uow: KnowledgeUnitOfWork, request: SearchRequest,
                             ranked: list[Fused]) -> list[Fused]:
        config = self._config
        seeds = [item.chunk_id for item in ranked[:config.graph_seeds]]
        scores = await expansion_scores(uow.graph, request.workspace_id, seeds, config.graph_hops,
                                        config.graph_fan_out, config.graph_hub_mentions)
        allowed = await uow.search.searchable(request.workspace_id, list(scores), request.filters)
        return with_graph(ranked, seeds, {chunk: score for chunk, score in scores.items() if chunk in allowed},
                          config.graph_weight)

    def _fuse(self, mode: SearchMode, by_vector: list[Candidate], by_keyword: list[Candidate]) -> list[Fused]:
        if mode is SearchMode.VECTOR:
            return single(by_vector, is_vector=True)
        if mode is SearchMode.KEYWORD:
            return single(by_keyword, is_vector=False)
        if self._config.fusion == "rrf":
            return reciprocal_rank(by_vector, by_keyword)
        return weighted_zscore(by_vector, by_keyword, self._config.keyword_weight)


class SearchWorkspace:
    """- Search for a caller: content:read in the workspace, then the search above."""

    def __init__(self, search: Search, access: AccessPolicy) -> None:
        self._search = search
        self._access = access

    async def execute(self, caller: Principal | None, request: SearchRequest) -> list[SearchHit]:
        await self._access.require(caller, Permission.CONTENT_READ, request.workspace_id)
        return await self._search.execute(request)
