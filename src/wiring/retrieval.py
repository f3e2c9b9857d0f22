"""Conversation's Retriever on top of Knowledge's search use case: hybrid search, hits as passages.
The two domains never import each other; this bridge is wired by the container."""

from __future__ import annotations

import logging
from uuid import UUID

from src.core.knowledge.search import Search, SearchRequest
from src.ports.knowledge import SearchMode
from src.ports.models import Passage
from src.ports.shared import DomainError

log = logging.getLogger(__name__)


class KnowledgeRetriever:
    def __init__(self, search: Search, mode: SearchMode = SearchMode.HYBRID) -> None:
        self._search = search
        self._mode = mode

    async def retrieve(self, workspace_id: UUID, query: str, k: int) -> list[Passage]:
        try:
            hits = await self._search.execute(SearchRequest(workspace_id, query[:1000], self._mode, k))
        except DomainError as exc:  # an answer without passages beats no answer
            log.warning("retrieval failed, answering without passages: %s", exc)
            return []
        return [Passage(hit.chunk.chunk_id, hit.chunk.document_id, hit.chunk.document_title, hit.chunk.text, hit.score)
                for hit in hits]
