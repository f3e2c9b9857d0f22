"""A worker SIGKILLed in the middle of ingesting 50 documents (its whole process group, no goodbye): a new
worker finishes every document exactly once, and the dead worker's jobs run again within seconds (the
Postgres broker's liveness settings). Prints the recovery time."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid

import pytest
from sqlalchemy import text

from src.container import build_container, shutdown
from src.core.knowledge.documents import DocumentUpload
from tests.conftest import fresh_database, start_worker, stop_worker
from tests.conversation_helpers import account, member

pytestmark = [pytest.mark.slow, pytest.mark.faults]
WORDS = ["glacier", "fjord", "basalt", "reef", "dune", "comet", "moss", "tide", "river", "delta", "moraine"]


@pytest.fixture
def own_db(settings):
    return fresh_database(settings, "worker_kill")


def document(number: int) -> DocumentUpload:
    paragraphs = "\n\n".join(" ".join(WORDS[(number + i + j) % len(WORDS)] for j in range(120)) + "."
                             for i in range(6))
    return DocumentUpload(f"Note {number}", f"# Note {number}\n\n{paragraphs}".encode(), "text/markdown")


async def states(container, workspace_id: uuid.UUID) -> dict[str, int]:
    async with container.engine().connect() as db:
        rows = await db.execute(text("SELECT status, count(*) FROM documents WHERE workspace_id = :w GROUP BY 1"),
                                {"w": workspace_id})
        return {status: n for status, n in rows.all()}


async def errors(container, workspace_id: uuid.UUID) -> list[str]:
    async with container.engine().connect() as db:
        rows = await db.execute(text("SELECT DISTINCT error FROM documents "
                                     "WHERE workspace_id = :w AND error IS NOT NULL"), {"w": workspace_id})
        return [row[0] for row in rows]


async def claimed_by_the_dead(container, dead: set) -> int:
    async with container.engine().connect() as db:
        return (await db.execute(text("SELECT count(*) FROM dramatiq.queue WHERE state = 'consumed' "
                                      "AND worker_id = ANY(:dead)"), {"dead": list(dead)})).scalar_one()


async def test_a_killed_workers_documents_end_ready_exactly_once_and_soon(own_db, test_env):
    env = {**test_env, "KEEL_DB_NAME": own_db.db_name}
    container = build_container(own_db)
    worker = start_worker(env, threads=2)
    try:
        user_id, workspace_id = await account(container)
        await container.upload_documents().execute(member(user_id), workspace_id,
                                                   [document(number) for number in range(50)])
        deadline = time.monotonic() + 180
        while (await states(container, workspace_id)).get("ready", 0) < 5:  # mid-ingestion
            assert time.monotonic() < deadline, "the worker never got going"
            await asyncio.sleep(0.2)
        async with container.engine().connect() as db:
            dead = {row[0] for row in await db.execute(text("SELECT worker_id FROM dramatiq.worker"))}
        os.killpg(worker.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        worker.wait(timeout=30)
        before = await states(container, workspace_id)
        replacement = start_worker(env, threads=2)
        try:
            requeued_after = None
            while (now := await states(container, workspace_id)).get("ready", 0) < 50:
                if requeued_after is None and await claimed_by_the_dead(container, dead) == 0:
                    requeued_after = time.monotonic() - killed_at
                assert "failed" not in now, await errors(container, workspace_id)
                assert time.monotonic() - killed_at < 180, f"not all ready after the kill: {now}"
                await asyncio.sleep(0.2)
            finished_after = time.monotonic() - killed_at
            requeued_after = requeued_after or finished_after
        finally:
            stop_worker(replacement)
        print(f"\nkilled at {before}; the dead worker's jobs ran again {requeued_after:.1f} s after the kill; all 50 "
              f"ready {finished_after:.1f} s after it")
        async with container.engine().connect() as db:
            rows = (await db.execute(text("""
                SELECT d.chunk_count, count(DISTINCT c.id), count(c.id), count(e.chunk_id)
                FROM documents d LEFT JOIN chunks c ON c.document_id = d.id
                LEFT JOIN chunk_embeddings e ON e.chunk_id = c.id
                WHERE d.workspace_id = :w GROUP BY d.id"""), {"w": workspace_id})).all()
        assert len(rows) == 50 and await states(container, workspace_id) == {"ready": 50}
        assert all(count > 0 and count == distinct == joined == vectors for count, distinct, joined, vectors in rows)
        assert requeued_after < 45  # a regression guard: the broker's defaults took 75-94 s
    finally:
        if worker.poll() is None:
            stop_worker(worker)
        await shutdown(container)
