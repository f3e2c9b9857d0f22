"""In-memory fakes of the ports, for core unit tests (cosmicpython's FakeUnitOfWork pattern)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Self
from uuid import UUID

from src.ports.identity import Forbidden
from src.ports.shared import Job
from src.ports.system import WorkerProbe


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


class FakeJobQueue:
    def __init__(self) -> None:
        self.enqueued: list[Job] = []

    async def enqueue(self, job: Job) -> None:
        self.enqueued.append(job)


@dataclass
class FakeProbeRepository:
    rows: dict[UUID, WorkerProbe] = field(default_factory=dict)

    async def add(self, probe: WorkerProbe) -> None:
        self.rows[probe.id] = probe

    async def get(self, probe_id: UUID, *, for_update: bool = False) -> WorkerProbe | None:
        return self.rows.get(probe_id)

    async def save(self, probe: WorkerProbe) -> None:
        self.rows[probe.id] = probe


class FakeUnitOfWork:
    """Stages writes and applies them on commit only, like a real transaction."""

    def __init__(self, jobs: FakeJobQueue, committed: FakeProbeRepository) -> None:
        self._jobs = jobs
        self._committed = committed
        self._deferred: list[Job] = []
        self.commits = 0

    async def __aenter__(self) -> Self:
        self.probes = FakeProbeRepository(dict(self._committed.rows))
        self._deferred = []
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._deferred = []

    def defer(self, job: Job) -> None:
        self._deferred.append(job)

    async def commit(self) -> None:
        self._committed.rows = dict(self.probes.rows)
        self.commits += 1
        for job in self._deferred:
            await self._jobs.enqueue(job)
        self._deferred = []

    async def rollback(self) -> None:
        self._deferred = []


class FakeAccess:
    """An AccessPolicy that allows everything, or nothing: it records what it was asked."""

    def __init__(self, allow: bool = True) -> None:
        self.allow = allow
        self.asked: list[tuple] = []

    async def require(self, caller, permission, workspace_id=None) -> None:
        self.asked.append((caller, permission, workspace_id))
        if not self.allow:
            raise Forbidden("you may not do that")
        return caller
