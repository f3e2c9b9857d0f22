"""A real job round-trip: GraphQL mutation -> Dramatiq broker -> worker process -> DB, watched live
through a GraphQL subscription over graphql-transport-ws. Runs on the default Postgres broker and on
Redis (KEEL_BROKER_URL)."""

from __future__ import annotations

import uuid

import pytest

from src.container import build_container, shutdown
from src.core.system.probes import PROCESS_PROBE_JOB
from src.main import create_app
from src.ports.shared import Job
from tests.conftest import asgi_client, graphql, signed_up_admin, start_worker, stop_worker, subscription_updates

REQUEST = "mutation { requestWorkerProbe { __typename ... on WorkerProbe { id done } } }"
WATCH = "subscription($id: ID!) { workerProbe(id: $id) { __typename ... on WorkerProbe { id done processedBy } } }"
READ = "query($id: ID!) { workerProbe(id: $id) { ... on WorkerProbe { done processedBy } } }"

pytestmark = pytest.mark.slow


@pytest.fixture(params=["postgres", "redis"])
def broker(request, settings, test_env):
    """(settings, env) for one broker; the env goes to the worker process."""
    if request.param == "postgres":
        return settings, test_env
    url = request.getfixturevalue("redis_url")
    return settings.model_copy(update={"broker_url": url}), {**test_env, "KEEL_BROKER_URL": url}


def _parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


async def _subscribe_until_done(app, probe_id: str, token: str, timeout: float = 90) -> list[dict]:
    return await subscription_updates(app, WATCH, token, "workerProbe", timeout, id=probe_id)


async def test_a_job_enqueued_by_the_app_is_processed_by_a_worker_process_once(broker):
    settings, env = broker
    services = build_container(settings)
    # One worker thread: jobs run strictly in queue order, so a job enqueued last finishes last.
    worker = start_worker(env, threads=1)
    try:
        app = create_app(settings, services)
        async with asgi_client(app) as client:
            token = (await signed_up_admin(client, services))["accessToken"]
            operator = await services.authenticate().execute(token)  # the admin, as the use cases see them
            created = (await graphql(client, REQUEST, token=token))["data"]["requestWorkerProbe"]
            assert created["__typename"] == "WorkerProbe" and created["done"] is False

            updates = await _subscribe_until_done(app, created["id"], token)
            assert updates[-1]["done"] is True and updates[-1]["id"] == created["id"]
            worker_pid = int(updates[-1]["processedBy"].rsplit(":", 1)[1])
            assert _parent_of(worker_pid) == worker.pid  # a child of the `keel worker` supervisor

            # Redelivery (every broker re-runs in-flight messages after a crash) must change nothing.
            for _ in range(2):
                await services.jobs().enqueue(Job(PROCESS_PROBE_JOB, {"probe_id": created["id"]}))
            sentinel = await services.request_worker_probe().execute(operator)
            await _subscribe_until_done(app, str(sentinel.id), token)

            probe = await services.get_worker_probe().execute(operator, uuid.UUID(created["id"]))
            assert probe.attempts == 1 and probe.processed_by == updates[-1]["processedBy"]
            read = (await graphql(client, READ, id=created["id"], token=token))["data"]["workerProbe"]
            assert read == {"done": True, "processedBy": probe.processed_by}
    finally:
        stop_worker(worker)
        await shutdown(services)
