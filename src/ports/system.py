"""Ports of the system module: worker probes prove that jobs flow from the app through a worker to the DB."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable
from uuid import UUID

from src.ports.shared import UnitOfWork


@dataclass(frozen=True, slots=True)
class WorkerProbe:
    id: UUID
    requested_at: datetime
    processed_at: datetime | None = None
    processed_by: str | None = None
    attempts: int = 0

    @property
    def done(self) -> bool:
        return self.processed_at is not None


@runtime_checkable
class WorkerProbeRepository(Protocol):
    async def add(self, probe: WorkerProbe) -> None: ...

    async def get(self, probe_id: UUID, *, for_update: bool = False) -> WorkerProbe | None: ...

    async def save(self, probe: WorkerProbe) -> None: ...


class SystemUnitOfWork(UnitOfWork, Protocol):
    probes: WorkerProbeRepository
