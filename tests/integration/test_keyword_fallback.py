"""Keyword search on a server without pg_textsearch (managed Postgres): ts_rank over the GIN-indexed
tsvector, chosen at run time because the BM25 index is absent."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from src.adapters.postgres.base import BM25_INDEX
from src.container import build_container, shutdown
from src.core.knowledge.documents import DocumentUpload
from src.core.knowledge.search import SearchRequest
from src.ports.knowledge import SearchMode
from tests.conftest import fresh_database
from tests.conversation_helpers import account, member


@pytest.fixture
def without_bm25(settings):
    return fresh_database(settings, "no_bm25")


async def test_keyword_search_falls_back_to_ts_rank_with_or_semantics_and_highlights(without_bm25):
    container = build_container(without_bm25)
    try:
        async with container.engine().begin() as connection:
            await connection.execute(text(f"DROP INDEX IF EXISTS {BM25_INDEX}"))
        user_id, workspace_id = await account(container)
        texts = {"Glaciers": "Glaciers carve deep fjords along the coast.",
                 "Volcanoes": "Volcanoes erupt basalt and ash.",
                 "Reefs": "Coral reefs bleach when oceans warm."}
        uploaded = await container.upload_documents().execute(
            member(user_id), workspace_id, [DocumentUpload(title, body.encode(), "text/plain")
                                            for title, body in texts.items()])
        await container.ingest_documents().execute([item.document.id for item in uploaded])

        # Any word may match: "fjords" is only in one document, "unicorns" in none.
        hits = await container.search().execute(SearchRequest(workspace_id, "unicorns fjords", SearchMode.KEYWORD))
        assert [hit.chunk.document_title for hit in hits] == ["Glaciers"]
        assert hits[0].chunk.highlights and "<mark>fjords</mark>" in hits[0].chunk.highlights[0]
        hybrid = await container.search().execute(SearchRequest(workspace_id, "warm oceans", SearchMode.HYBRID, 1))
        assert hybrid[0].chunk.document_title == "Reefs"
        async with container.engine().connect() as connection:
            assert (await connection.execute(text(f"SELECT count(*) FROM pg_indexes WHERE indexname = '{BM25_INDEX}'")
                                             )).scalar_one() == 0
    finally:
        await shutdown(container)
