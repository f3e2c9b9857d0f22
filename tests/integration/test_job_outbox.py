"""Transactional jobs: a job is recorded in the transaction of the change that causes it (the outbox) and
handed to the broker after the commit, off the event loop; a broker that is away or silent at that moment
gets the job from the relay once it is back, and the document still ends READY. Real Redis, real worker."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from datetime import timedelta

import pytest
from sqlalchemy import text

from src.container import build_container, shutdown
from src.core.knowledge.documents import DocumentUpload
from src.core.system.schedules import RelayJobs
from src.ports.knowledge import DocumentStatus
from src.ports.shared import Job
from tests.conftest import start_worker, stop_worker, wait_for
from tests.conversation_helpers import account, member
from tests.net import free_port

pytestmark = pytest.mark.slow


async def _longest_stall_while(work) -> tuple[object, float]:
    """Runs `work` while a ticker measures the longest time the event loop did not run it."""
    longest, running = 0.0, True

    async def tick() -> None:
        nonlocal longest
        last = time.perf_counter()
        while running:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            longest, last = max(longest, now - last), now

    ticker = asyncio.create_task(tick())
    try:
        return await work, longest
    finally:
        running = False
        await ticker


async def _pending_jobs(container, document_id) -> int:
    async with container.engine().connect() as connection:
        return (await connection.execute(text(
            "SELECT count(*) FROM job_outbox WHERE kwargs::text LIKE :id"),
            {"id": f"%{document_id}%"})).scalar_one()


async def test_an_upload_while_the_broker_is_away_is_ingested_once_it_is_back(settings, test_env):
    if subprocess.run(["which", "redis-server"], capture_output=True).returncode != 0:
        pytest.skip("redis-server is not installed (`keel test` installs it as root)")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    container = build_container(settings.model_copy(update={"broker_url": url}))
    redis = worker = None
    try:
        user_id, workspace_id = await account(container)
        upload = container.upload_documents().execute(member(user_id), workspace_id, [
            DocumentUpload("Fjords", b"Fjords are narrow inlets carved by glaciers.", "text/plain")])
        [uploaded], stall = await _longest_stall_while(upload)  # no Redis listening: the hand-over fails
        document_id = uploaded.document.id
        assert stall < 0.2 and await _pending_jobs(container, document_id) == 1

        redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no"], stdout=subprocess.DEVNULL)
        wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, timeout=30)
        relay = RelayJobs(container.system_uow, container.jobs(), container.clock(), grace=timedelta(0))
        for _ in range(20):  # the oldest first: other tests' leftovers may come before it
            if not await _pending_jobs(container, document_id):
                break
            assert await relay.execute() >= 1
        assert await _pending_jobs(container, document_id) == 0

        worker = start_worker({**test_env, "KEEL_BROKER_URL": url})
        async with asyncio.timeout(120):
            while (await container.get_document().execute(member(user_id), workspace_id, document_id)
                   ).status is not DocumentStatus.READY:
                await asyncio.sleep(0.3)
    finally:
        if worker is not None:
            stop_worker(worker)
        if redis is not None:
            redis.terminate()
            redis.wait(timeout=30)
        await shutdown(container)


async def test_a_silent_broker_never_stalls_the_event_loop(settings):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # accepts connections and never answers: a broker that hangs
    url = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    container = build_container(settings.model_copy(update={"broker_url": url}))
    try:
        user_id, workspace_id = await account(container)
        started = time.perf_counter()
        upload = container.upload_documents().execute(member(user_id), workspace_id, [
            DocumentUpload("Dunes", b"Dunes are hills of sand shaped by the wind.", "text/plain")])
        [uploaded], stall = await _longest_stall_while(upload)
        assert stall < 0.2 and time.perf_counter() - started < 5  # the hand-over gave up after its deadline
        assert uploaded.document.status is DocumentStatus.QUEUED
        assert await _pending_jobs(container, uploaded.document.id) == 1  # kept for the relay
        async with container.engine().begin() as connection:  # no broker will ever take it: not left behind
            await connection.execute(text("DELETE FROM job_outbox WHERE kwargs::text LIKE :id"),
                                     {"id": f"%{uploaded.document.id}%"})
    finally:
        listener.close()
        await shutdown(container)


async def test_a_rolled_back_change_leaves_no_job(container):
    async with container.engine().connect() as connection:
        before = (await connection.execute(text("SELECT count(*) FROM job_outbox"))).scalar_one()
    async with container.system_uow() as uow:
        uow.defer(Job("system.process_probe", {"probe_id": "x"}))
        await uow.rollback()
    async with container.engine().connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM job_outbox"))).scalar_one() == before
