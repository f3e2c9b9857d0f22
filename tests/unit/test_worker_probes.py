"""Worker probe use cases against in-memory fakes."""

from __future__ import annotations

import uuid

import pytest

from src.core.system.probes import (
    PROCESS_PROBE_JOB,
    GetWorkerProbe,
    ProcessWorkerProbe,
    RequestWorkerProbe,
    WatchWorkerProbe,
    parse_probe_id,
)
from src.ports.identity import Principal, Role
from src.ports.shared import InvalidInput, Job, NotFound
from src.ports.system import WorkerProbe
from tests.fakes.ports import FakeAccess, FakeClock, FakeJobQueue, FakeProbeRepository, FakeUnitOfWork

OPERATOR = Principal(uuid.uuid4(), Role.ADMIN)


@pytest.fixture
def world():
    jobs, store, clock = FakeJobQueue(), FakeProbeRepository(), FakeClock()
    uow = FakeUnitOfWork(jobs, store)
    return jobs, store, clock, (lambda: uow)


async def test_request_stores_the_probe_and_enqueues_its_job_after_commit(world):
    jobs, store, clock, uow = world
    probe = await RequestWorkerProbe(uow, clock, FakeAccess()).execute(OPERATOR)
    assert store.rows[probe.id] == probe and not probe.done
    assert [(job.name, job.kwargs) for job in jobs.enqueued] == [(PROCESS_PROBE_JOB, {"probe_id": str(probe.id)})]


async def test_a_transaction_that_does_not_commit_enqueues_nothing(world):
    jobs, store, clock, uow = world
    async with uow() as unit:
        await unit.probes.add(WorkerProbe(uuid.uuid4(), clock.now()))
        unit.defer(Job(PROCESS_PROBE_JOB))
    assert jobs.enqueued == [] and store.rows == {}


async def test_processing_twice_changes_state_once(world):
    jobs, store, clock, uow = world
    probe = await RequestWorkerProbe(uow, clock, FakeAccess()).execute(OPERATOR)
    clock.advance(2)
    first = await ProcessWorkerProbe(uow, clock).execute(probe.id, "worker-a")
    clock.advance(5)
    second = await ProcessWorkerProbe(uow, clock).execute(probe.id, "worker-b")
    assert first == second == store.rows[probe.id]
    assert (first.processed_by, first.attempts) == ("worker-a", 1)
    assert (first.processed_at - probe.requested_at).total_seconds() == 2


async def test_unknown_probe_is_not_found(world):
    _, _, clock, uow = world
    with pytest.raises(NotFound):
        await ProcessWorkerProbe(uow, clock).execute(uuid.uuid4(), "w")
    with pytest.raises(NotFound):
        await GetWorkerProbe(uow, FakeAccess()).execute(OPERATOR, uuid.uuid4())


@pytest.mark.parametrize("raw", ["", "nope", "123", "'; DROP TABLE worker_probes; --"])
def test_probe_ids_must_be_uuids(raw):
    with pytest.raises(InvalidInput) as error:
        parse_probe_id(raw)
    assert error.value.field == "id"


async def test_watch_yields_each_change_and_stops_when_processed(world):
    _, store, clock, uow = world
    probe = await RequestWorkerProbe(uow, clock, FakeAccess()).execute(OPERATOR)
    watch = WatchWorkerProbe(GetWorkerProbe(uow, FakeAccess()), interval=0.01).execute(OPERATOR, probe.id,
                                                                                       timeout=5)
    seen = [await anext(watch)]
    await ProcessWorkerProbe(uow, clock).execute(probe.id, "w")
    seen += [item async for item in watch]
    assert [item.done for item in seen] == [False, True]


async def test_watch_gives_up_after_its_timeout(world):
    _, _, clock, uow = world
    probe = await RequestWorkerProbe(uow, clock, FakeAccess()).execute(OPERATOR)
    watch = WatchWorkerProbe(GetWorkerProbe(uow, FakeAccess()), interval=0.01)
    seen = [item async for item in watch.execute(OPERATOR, probe.id, timeout=0.05)]
    assert [item.done for item in seen] == [False]
