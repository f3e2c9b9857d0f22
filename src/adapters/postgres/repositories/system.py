"""Worker probes in Postgres."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from src.adapters.postgres.models.system import JobScheduleRow, WorkerProbeRow
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


class PgScheduleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim_due(self, job_name: str, now: datetime, next_run_at: datetime) -> bool:
        row = JobScheduleRow
        await self._session.execute(insert(row).values(job_name=job_name, next_run_at=next_run_at)
                                    .on_conflict_do_nothing())
        await self._session.execute(update(row).where(row.job_name == job_name, row.next_run_at > next_run_at)
                                    .values(next_run_at=next_run_at))
        # Concurrent claimers queue on the row lock; after the winner commits the WHERE no longer holds.
        claimed = await self._session.execute(
            update(row).where(row.job_name == job_name, row.next_run_at <= now)
            .values(next_run_at=next_run_at, last_run_at=now).returning(row.job_name))
        return claimed.first() is not None
