"""Worker probes, periodic job schedules and the job outbox in Postgres."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from src.adapters.postgres.mapping import to_record, values_of
from src.adapters.postgres.system.tables import JobOutboxRow, JobScheduleRow, WorkerProbeRow
from src.ports.shared import Job, PendingJob
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


_OUTBOX = JobOutboxRow.__table__
_RECORD_JOBS = _OUTBOX.insert()
_PENDING_JOBS = (select(_OUTBOX.c.id, _OUTBOX.c.name, _OUTBOX.c.kwargs, _OUTBOX.c.context, _OUTBOX.c.created_at)
                 .where(_OUTBOX.c.created_at < bindparam("before"))
                 .order_by(_OUTBOX.c.created_at).limit(bindparam("limit")).with_for_update(skip_locked=True))


async def record_jobs(session: AsyncSession, pending: list[PendingJob]) -> None:
    """Inside the transaction of the change the jobs belong to: they commit (or roll back) with it."""
    await session.execute(_RECORD_JOBS, [{"id": p.id, "name": p.job.name, "kwargs": dict(p.job.kwargs),
                                          "context": p.job.context, "created_at": p.created_at} for p in pending])


async def forget_sent(session: AsyncSession, ids: list[UUID]) -> None:
    """The broker has them: the outbox keeps only what it still has to hand over."""
    await session.execute(delete(_OUTBOX).where(_OUTBOX.c.id.in_(ids)))


class PgJobOutbox:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def pending(self, recorded_before: datetime, limit: int) -> list[PendingJob]:
        rows = await self._session.execute(_PENDING_JOBS, {"before": recorded_before, "limit": limit})
        return [PendingJob(row.id, Job(row.name, row.kwargs, row.context), row.created_at) for row in rows]

    async def sent(self, ids: list[UUID]) -> None:
        await forget_sent(self._session, ids)
