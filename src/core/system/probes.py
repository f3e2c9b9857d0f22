"""Worker probes: the app records a probe and enqueues a job; a worker marks it processed, once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from uuid import UUID

from src.core.shared.watching import watch
from src.ports.identity import AccessPolicy, Permission, Principal
from src.ports.shared import Clock, InvalidInput, Job, NotFound
from src.ports.system import SystemUnitOfWork, WorkerProbe

PROCESS_PROBE_JOB = "system.process_probe"


def parse_probe_id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except (ValueError, TypeError):
        raise InvalidInput("probe id must be a UUID", field="id") from None


class RequestWorkerProbe:
    """- Stores a new probe and enqueues its job after the commit (a rollback enqueues nothing)."""

    def __init__(self, uow: Callable[[], SystemUnitOfWork], clock: Clock, access: AccessPolicy) -> None:
        self._uow = uow
        self._clock = clock
        self._access = access

    async def execute(self, caller: Principal | None) -> WorkerProbe:
        await self._access.require(caller, Permission.SYSTEM_OPERATE)
        probe = WorkerProbe(id=uuid.uuid4(), requested_at=self._clock.now())
        async with self._uow() as uow:
            await uow.probes.add(probe)
            uow.defer(Job(PROCESS_PROBE_JOB, {"probe_id": str(probe.id)}))
            await uow.commit()
        return probe


class ProcessWorkerProbe:
    """- Marks the probe processed by `worker`; a redelivered job changes nothing (idempotent)."""

    def __init__(self, uow: Callable[[], SystemUnitOfWork], clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def execute(self, probe_id: UUID, worker: str) -> WorkerProbe:
        async with self._uow() as uow:
            probe = await uow.probes.get(probe_id, for_update=True)
            if probe is None:
                raise NotFound(f"no worker probe {probe_id}")
            if probe.done:
                return probe
            probe = replace(probe, processed_at=self._clock.now(), processed_by=worker, attempts=probe.attempts + 1)
            await uow.probes.save(probe)
            await uow.commit()
        return probe


class GetWorkerProbe:
    def __init__(self, uow: Callable[[], SystemUnitOfWork], access: AccessPolicy) -> None:
        self._uow = uow
        self._access = access

    async def execute(self, caller: Principal | None, probe_id: UUID) -> WorkerProbe:
        await self._access.require(caller, Permission.SYSTEM_OPERATE)
        async with self._uow() as uow:
            probe = await uow.probes.get(probe_id)
        if probe is None:
            raise NotFound(f"no worker probe {probe_id}")
        return probe


class WatchWorkerProbe:
    """- Yields the probe now and on every change until it is processed or `timeout` seconds pass.

    Each look is its own short read: nothing is held open while waiting.
    """

    def __init__(self, get: GetWorkerProbe, interval: float = 0.2) -> None:
        self._get = get
        self._interval = interval

    async def execute(self, caller: Principal | None, probe_id: UUID,
                      timeout: float = 60.0) -> AsyncIterator[WorkerProbe]:
        async for probe in watch(lambda: self._get.execute(caller, probe_id), lambda probe: probe.done,
                                 interval=self._interval, timeout=timeout):
            yield probe
