"""Knowledge's unit of work: documents, chunks, embedding spaces, hybrid search and the entity graph (AGE or
plain tables, per KEEL_GRAPH_STORE), plus the usage ledger that LLM extraction spends from."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from src.adapters.postgres.conversation.repositories import PgUsageLedger
from src.adapters.postgres.knowledge.graph_age import AgeGraphStore
from src.adapters.postgres.knowledge.graph_relational import TableGraphStore
from src.adapters.postgres.knowledge.repositories import (
    PgChunkRepository,
    PgDocumentRepository,
    PgEmbeddingSpaceRepository,
)
from src.adapters.postgres.knowledge.search import PgSearchIndex, PgSearchSettings
from src.adapters.postgres.unit_of_work import PgUnitOfWork
from src.ports.shared import JobQueue


class PgKnowledgeUnitOfWork(PgUnitOfWork):
    documents: PgDocumentRepository
    chunks: PgChunkRepository
    spaces: PgEmbeddingSpaceRepository
    search: PgSearchIndex
    graph: AgeGraphStore | TableGraphStore
    usage: PgUsageLedger

    def __init__(self, session_factory: async_sessionmaker, jobs: JobQueue,
                 search_settings: PgSearchSettings | None = None, graph_store: str = "age") -> None:
        super().__init__(session_factory, jobs)
        self._search_settings = search_settings or PgSearchSettings()
        self._graph_store = AgeGraphStore if graph_store == "age" else TableGraphStore

    def _open(self, db: AsyncSession) -> None:
        self.documents = PgDocumentRepository(db)
        self.chunks = PgChunkRepository(db)
        self.spaces = PgEmbeddingSpaceRepository(db)
        self.search = PgSearchIndex(db, self._search_settings)
        self.graph = self._graph_store(db)
        self.usage = PgUsageLedger(db)
