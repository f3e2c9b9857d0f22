"""Worker probes in Postgres."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from src.adapters.postgres.models.system import WorkerProbeRow
from src.adapters.postgres.repositories.mapping import to_record, values_of
from src.ports.system import WorkerProbe


class PgWorkerProbeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, probe: WorkerProbe) -> None:
        self._session.add(WorkerProbeRow(**values_of(probe)))
        await self._session.flush()

    async def get(self, probe_id: UUID, *, for_update: bool = False) -> WorkerProbe | None:
        query = select(WorkerProbeRow).where(WorkerProbeRow.id == probe_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._session.execute(query)).scalar_one_or_none()
        return None if row is None else to_record(row, WorkerProbe)

    async def save(self, probe: WorkerProbe) -> None:
        await self._session.merge(WorkerProbeRow(**values_of(probe)))
        await self._session.flush()
