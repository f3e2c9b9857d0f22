"""Ingestion that breaks half-way and resumes; switching embedding models with search running throughout.

The real `openai` SDK talks to a local fake of OpenAI's embeddings endpoint; each test has a database of
its own because the active embedding space is global state.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import dramatiq
import pytest
from dependency_injector import providers
from sqlalchemy import text

from src.container import build_container, shutdown
from src.core.knowledge.documents import INGEST_JOB, DocumentUpload
from src.core.knowledge.search import SearchRequest
from src.core.knowledge.spaces import REEMBED_JOB
from src.evaluation.retrieval import CollectedJobs
from src.ports.knowledge import Document, DocumentStatus, EmbeddingUnavailable, SearchMode, SpaceStatus
from tests.conftest import fresh_database, start_worker, stop_worker
from tests.conversation_helpers import account, member, owner_of

pytestmark = pytest.mark.slow
OPENAI_SPACE = "openai/text-embedding-3-small@64"
TOPICS = ["glaciers carve fjords", "volcanoes erupt basalt", "coral reefs bleach", "dunes migrate in deserts",
          "comets grow icy tails", "mosses colonise rock", "tides follow the moon", "rivers braid on plains"]


@pytest.fixture
def own_db(request, settings):
    """Settings of a fresh, migrated database for this test alone (made before its event loop runs)."""
    return fresh_database(settings, request.node.name.removeprefix("test_")[:20])


def openai_settings(settings, fake, **extra):
    return settings.model_copy(update={"embedding_model": OPENAI_SPACE, "openai_api_key": fake.api_key,
                                       "openai_base_url": fake.base_url, **extra})


async def new_workspace(container) -> uuid.UUID:
    _, workspace_id = await account(container)
    return workspace_id


async def upload(container, workspace_id, title: str, body: str) -> tuple[uuid.UUID, list]:
    """Uploads without a broker: returns the document id and the jobs the upload queued."""
    collected = CollectedJobs()
    container.jobs.override(providers.Object(collected))
    try:
        owner = member(await owner_of(container, workspace_id))
        [uploaded] = await container.upload_documents().execute(
            owner, workspace_id, [DocumentUpload(title, body.encode(), "text/markdown")])
    finally:
        container.jobs.reset_override()
    return uploaded.document.id, collected.jobs


async def vectors_by_space(container, document_id=None) -> dict[str, int]:
    where = "WHERE document_id = :id" if document_id else ""
    async with container.engine().connect() as connection:
        rows = await connection.execute(text(f"SELECT space, count(*) FROM chunk_embeddings {where} GROUP BY space"),
                                        {"id": document_id})
        return dict(rows.all())


async def chunk_ids(container, document_id) -> list:
    async with container.engine().connect() as connection:
        rows = await connection.execute(text("SELECT id FROM chunks WHERE document_id = :id ORDER BY position"),
                                        {"id": document_id})
        return [row.id for row in rows]


def long_markdown() -> str:
    return "\n\n".join(f"## Topic {number}\n\n" + f"A paragraph on how {topic}. " * 12
                       for number, topic in enumerate(TOPICS))


async def test_an_ingestion_that_fails_half_way_resumes_to_one_consistent_copy(own_db, fake_openai):
    config = openai_settings(own_db, fake_openai, embedding_batch_size=2, embedding_step_chunks=2)
    container = build_container(config)
    try:
        workspace_id = await new_workspace(container)
        document_id, jobs = await upload(container, workspace_id, "Earth", long_markdown())
        assert [job.name for job in jobs] == [INGEST_JOB]
        ingest = container.ingest_documents()

        fake_openai.fail_next(1000, status=503, after=2)  # two batches get through, then the provider is down
        with pytest.raises(EmbeddingUnavailable):
            await ingest.execute([document_id])
        document = await container.get_document().execute(member(await owner_of(container, workspace_id)), workspace_id,
                                                             document_id)
        assert document.status is DocumentStatus.PROCESSING
        assert 0 < document.embedded_count < document.chunk_count
        first_chunks = await chunk_ids(container, document_id)
        assert len(first_chunks) == document.chunk_count

        fake_openai.heal()
        await ingest.execute([document_id])  # the retry: same chunks, only the missing vectors
        done = await container.get_document().execute(member(await owner_of(container, workspace_id)), workspace_id,
                                                             document_id)
        assert done.status is DocumentStatus.READY and done.embedded_count == done.chunk_count
        assert await chunk_ids(container, document_id) == first_chunks
        assert await vectors_by_space(container, document_id) == {OPENAI_SPACE: done.chunk_count}

        calls = fake_openai.calls
        await ingest.execute([document_id])  # redelivered once more: nothing to do, nothing called
        assert fake_openai.calls == calls
        assert await vectors_by_space(container, document_id) == {OPENAI_SPACE: done.chunk_count}

        hits = await container.search().execute(SearchRequest(workspace_id, "coral reefs bleach", SearchMode.VECTOR, 3))
        assert "coral reefs bleach" in hits[0].chunk.text

        fake_openai.fail_next(1000, status=429)  # the provider is out: a new query is answered from keywords alone
        cached = await container.search().execute(SearchRequest(workspace_id, "coral reefs bleach", SearchMode.VECTOR))
        assert "coral reefs bleach" in cached[0].chunk.text  # (a query seen before still has its vector)
        hybrid = await container.search().execute(SearchRequest(workspace_id, "reefs bleach", SearchMode.HYBRID))
        assert "coral reefs bleach" in hybrid[0].chunk.text and hybrid[0].vector_score is None
        with pytest.raises(EmbeddingUnavailable):
            await container.search().execute(SearchRequest(workspace_id, "coral reefs", SearchMode.VECTOR))
    finally:
        await shutdown(container)


async def test_after_the_last_retry_the_documents_fail_with_the_reason(own_db, fake_openai):
    container = build_container(openai_settings(own_db, fake_openai))
    try:
        workspace_id = await new_workspace(container)
        document_id, _ = await upload(container, workspace_id, "Doomed", "Some text about tides.")
        fake_openai.fail_next(1000, status=500)
        with pytest.raises(EmbeddingUnavailable) as failure:
            await container.ingest_documents().execute([document_id])
        await container.give_up_ingestion().execute([document_id], str(failure.value))
        document = await container.get_document().execute(member(await owner_of(container, workspace_id)), workspace_id,
                                                             document_id)
        assert document.status is DocumentStatus.FAILED and "OpenAI embeddings failed" in document.error
        assert await chunk_ids(container, document_id) == []
    finally:
        await shutdown(container)


async def test_a_worker_retries_a_refused_ingestion_and_gives_up_only_after_the_last_retry(own_db, fake_openai,
                                                                                        test_env):
    """Through a real worker: one failed attempt is retried (the document ends ready, not failed), and a job
    out of retries fails its documents with the last error."""
    config = openai_settings(own_db, fake_openai)
    container = build_container(config)
    worker = start_worker({**test_env, "KEEL_DB_NAME": own_db.db_name, "KEEL_EMBEDDING_MODEL": OPENAI_SPACE,
                           "KEEL_OPENAI_API_KEY": fake_openai.api_key, "KEEL_OPENAI_BASE_URL": fake_openai.base_url})
    owner = None

    async def ingested(title: str, max_retries: int) -> Document:
        document_id, [job] = await upload(container, workspace_id, title, f"Some text about {title}.")
        message = dramatiq.Message(queue_name="default", actor_name=job.name, args=(), kwargs=dict(job.kwargs),
                                   options={"max_retries": max_retries, "min_backoff": 200})
        await asyncio.to_thread(container.broker().enqueue, message)
        deadline = time.monotonic() + 60
        while await status_of(document_id) not in ("ready", "failed"):
            assert time.monotonic() < deadline, f"{title} neither ready nor failed"
            await asyncio.sleep(0.2)
        return await container.get_document().execute(owner, workspace_id, document_id)

    async def status_of(document_id) -> str:
        async with container.engine().connect() as db:
            found = await db.execute(text("SELECT status FROM documents WHERE id = :id"), {"id": document_id})
            return found.scalar_one()

    try:
        workspace_id = await new_workspace(container)
        owner = member(await owner_of(container, workspace_id))
        fake_openai.fail_next(4, status=500)  # one whole attempt: the SDK's own three retries fail too
        retried = await ingested("tides", max_retries=3)
        assert retried.status is DocumentStatus.READY and retried.error is None
        fake_openai.fail_next(1000, status=500)
        doomed = await ingested("moss", max_retries=1)
        assert doomed.status is DocumentStatus.FAILED and "ingestion failed" in doomed.error, doomed.error
        assert "EmbeddingUnavailable" in doomed.error and await chunk_ids(container, doomed.id) == []
    finally:
        fake_openai.heal()
        stop_worker(worker)
        await shutdown(container)


async def test_switching_models_fills_the_new_space_while_search_uses_the_old_then_swaps(own_db, fake_openai):
    local_config = own_db
    local = build_container(local_config)
    switched = build_container(openai_settings(local_config, fake_openai))
    try:
        workspace_id = await new_workspace(local)
        first_id, _ = await upload(local, workspace_id, "Earth", long_markdown())
        await local.ingest_documents().execute([first_id])
        old_space = local.embedders().configured().model_name
        assert await vectors_by_space(local) == {old_space: len(await chunk_ids(local, first_id))}

        collected = CollectedJobs()
        switched.jobs.override(providers.Object(collected))
        building = await switched.sync_embedding_space().execute()
        switched.jobs.reset_override()
        assert (building.name, building.status) == (OPENAI_SPACE, SpaceStatus.BUILDING)
        assert [(job.name, job.kwargs) for job in collected.jobs] == [(REEMBED_JOB, {"space": OPENAI_SPACE})]

        # While the new space fills, search still embeds queries with the old model (no call to OpenAI).
        calls = fake_openai.calls
        hits = await switched.search().execute(SearchRequest(workspace_id, "volcanoes erupt basalt",
                                                             SearchMode.VECTOR, 3))
        assert "volcanoes erupt basalt" in hits[0].chunk.text and fake_openai.calls == calls
        # A document ingested meanwhile gets vectors in both spaces.
        second_id, _ = await upload(switched, workspace_id, "Sky", "Auroras shimmer over the poles at night.")
        await switched.ingest_documents().execute([second_id])
        assert await vectors_by_space(switched, second_id) == {old_space: 1, OPENAI_SPACE: 1}

        active = await switched.reembed().execute(OPENAI_SPACE)
        assert active.status is SpaceStatus.ACTIVE
        total = len(await chunk_ids(switched, first_id)) + 1
        assert await vectors_by_space(switched) == {OPENAI_SPACE: total}  # the old vectors are gone
        async with switched.knowledge_uow() as uow:
            statuses = {space.name: space.status for space in await uow.spaces.all()}
        assert statuses == {old_space: SpaceStatus.RETIRED, OPENAI_SPACE: SpaceStatus.ACTIVE}

        hits = await switched.search().execute(SearchRequest(workspace_id, "auroras shimmer poles",
                                                             SearchMode.VECTOR, 3))
        assert hits[0].chunk.document_id == second_id and fake_openai.calls > calls
        assert (await switched.sync_embedding_space().execute()).status is SpaceStatus.ACTIVE  # idempotent
    finally:
        await shutdown(local)
        await shutdown(switched)
