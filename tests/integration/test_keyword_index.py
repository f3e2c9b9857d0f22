"""The BM25 keyword index after a Postgres restart: the bundled pg_textsearch can come back answering
nothing for rows it holds; Keel's check finds that and rebuilds the index, and keyword search finds again.
Restarts the local cluster, so it needs one."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from src.adapters.postgres.base import BM25_INDEX
from src.core.knowledge.search import SearchRequest
from src.ports.knowledge import SearchMode
from tests.conftest import run_keel
from tests.conversation_helpers import account, ready_documents

pytestmark = pytest.mark.slow


async def _keyword_titles(container, workspace_id) -> list[str]:
    hits = await container.search().execute(SearchRequest(workspace_id, "fjords glacial erosion", SearchMode.KEYWORD))
    return [hit.chunk.document_title for hit in hits]


async def test_a_restart_that_empties_the_bm25_index_is_repaired(settings, container, test_env):
    if not settings.embedded_database:
        pytest.skip("restarts the local cluster")
    async with container.knowledge_uow() as uow:
        found = await uow.db.execute(text("SELECT 1 FROM pg_indexes WHERE indexname = :n"), {"n": BM25_INDEX})
        if found.first() is None:
            pytest.skip("no pg_textsearch here: keyword search uses ts_rank")
    _, workspace_id = await account(container)
    await ready_documents(container, workspace_id, {"Glaciers": "# Glaciers\n\nGlacial erosion carves fjords."})
    assert await _keyword_titles(container, workspace_id) == ["Glaciers"]
    assert await container.check_keyword_index().execute() is False  # a working index is left alone

    for step in ("stop", "start"):
        result = run_keel("db", step, env=test_env)
        assert result.returncode == 0, result.stderr[-2000:]
    await asyncio.sleep(0.2)  # a running loop sees the pooled connections closed (this one was blocked above)
    await container.check_keyword_index().execute()  # pg_textsearch 1.0 loses rows here: seen rebuilt in every run
    assert await _keyword_titles(container, workspace_id) == ["Glaciers"]
    assert await container.check_keyword_index().execute() is False  # the index answers again: nothing to do
