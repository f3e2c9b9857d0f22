"""System's unit of work: worker probes, job schedules, the job outbox and the operational counts."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from src.adapters.postgres.system.operations import PgOperationsRepository
from src.adapters.postgres.system.repositories import PgJobOutbox, PgScheduleRepository, PgWorkerProbeRepository
from src.adapters.postgres.system.retention import PgRetentionRepository
from src.adapters.postgres.unit_of_work import PgUnitOfWork


class PgSystemUnitOfWork(PgUnitOfWork):
    probes: PgWorkerProbeRepository
    schedules: PgScheduleRepository
    outbox: PgJobOutbox
    operations: PgOperationsRepository
    retention: PgRetentionRepository

    def _open(self, db: AsyncSession) -> None:
        self.probes = PgWorkerProbeRepository(db)
        self.schedules = PgScheduleRepository(db)
        self.outbox = PgJobOutbox(db)
        self.operations = PgOperationsRepository(db)
        self.retention = PgRetentionRepository(db)
