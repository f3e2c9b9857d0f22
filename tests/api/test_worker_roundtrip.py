"""A real job round-trip: GraphQL mutation -> Postgres-backed Dramatiq queue -> worker process -> DB,
watched live through a GraphQL subscription over graphql-transport-ws."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from httpx_ws import aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from sqlalchemy import text

from src.core.system.probes import PROCESS_PROBE_JOB
from src.main import create_app
from src.ports.shared import Job
from tests.conftest import graphql

REQUEST = "mutation { requestWorkerProbe { __typename ... on WorkerProbe { id done } } }"
WATCH = "subscription($id: ID!) { workerProbe(id: $id) { __typename ... on WorkerProbe { id done processedBy } } }"
READ = "query($id: ID!) { workerProbe(id: $id) { ... on WorkerProbe { done processedBy } } }"

pytestmark = pytest.mark.slow


def _parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


async def _until_queue_drained(container, probe_id: str, timeout: float = 60) -> None:
    """Acked messages leave the Postgres queue table: wait until none for this probe is left."""
    if container.settings().broker_url:
        pytest.skip("queue inspection needs the default Postgres broker")
    query = text("SELECT count(*) FROM dramatiq.queue WHERE message->'kwargs'->>'probe_id' = :id")
    async with asyncio.timeout(timeout):
        while True:
            async with container.engine().connect() as connection:
                if (await connection.execute(query, {"id": probe_id})).scalar_one() == 0:
                    return
            await asyncio.sleep(0.1)


async def _subscribe_until_done(app, probe_id: str, timeout: float = 90) -> list[dict]:
    transport = ASGIWebSocketTransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://keel.test") as http:
        async with aconnect_ws("/graphql", http, subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send_json({"type": "connection_init"})
            assert (await ws.receive_json())["type"] == "connection_ack"
            await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": WATCH, "variables": {"id": probe_id}}})
            updates = []
            async with asyncio.timeout(timeout):
                while True:
                    message = await ws.receive_json()
                    if message["type"] == "complete":
                        return updates
                    assert message["type"] == "next", message
                    updates.append(message["payload"]["data"]["workerProbe"])


async def test_a_job_enqueued_by_the_app_is_processed_by_a_worker_process(settings, container, worker_process):
    app = create_app(settings, container)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://keel.test") as client:
        created = (await graphql(client, REQUEST))["data"]["requestWorkerProbe"]
        assert created["__typename"] == "WorkerProbe" and created["done"] is False

        updates = await _subscribe_until_done(app, created["id"])
        assert updates[-1]["done"] is True and updates[-1]["id"] == created["id"]
        worker_pid = int(updates[-1]["processedBy"].rsplit(":", 1)[1])
        assert _parent_of(worker_pid) == worker_process.pid  # a child of the `keel worker` supervisor

        # Redelivery (every broker re-runs in-flight messages after a crash) must change nothing.
        container.jobs().enqueue(Job(PROCESS_PROBE_JOB, {"probe_id": created["id"]}))
        container.jobs().enqueue(Job(PROCESS_PROBE_JOB, {"probe_id": created["id"]}))
        await _until_queue_drained(container, created["id"])
        probe = await container.get_worker_probe().execute(uuid.UUID(created["id"]))
        assert probe.attempts == 1 and probe.processed_by == updates[-1]["processedBy"]
        read = (await graphql(client, READ, id=created["id"]))["data"]["workerProbe"]
        assert read == {"done": True, "processedBy": probe.processed_by}
