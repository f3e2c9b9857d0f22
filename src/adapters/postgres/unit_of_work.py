"""What every domain's unit of work shares: one SQLAlchemy session and transaction, database errors mapped to
StorageUnavailable, and deferred jobs recorded in the transaction (the outbox) and handed to the broker after
the commit. Each domain's unit of work (postgres/<domain>/unit_of_work.py) adds its repositories."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import Self

from asyncpg.exceptions import ConnectionDoesNotExistError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from src.adapters.postgres.system.repositories import forget_sent, record_jobs
from src.ports.shared import Job, JobQueue, JobQueueUnavailable, PendingJob, StorageUnavailable

log = logging.getLogger(__name__)
HAND_OVER_SECONDS = 2.0  # a broker that does not take the jobs by then gets them from the relay


# SQLSTATEs of a database that is away, shutting down, starting up or full: another try later may work
_AWAY = ("08", "57P01", "57P02", "57P03", "53300")


def unreachable(exc: BaseException) -> bool:
    """True for the errors of a database that cannot be reached, along the chain of causes (SQLAlchemy wraps
    the driver's own): connection refused or lost, the server shutting down or starting up."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (OperationalError, InterfaceError, OSError, ConnectionDoesNotExistError)) or (
                isinstance(seen, DBAPIError) and seen.connection_invalidated):
            return True
        if str(getattr(seen, "sqlstate", "") or "").startswith(_AWAY):
            return True
        seen = seen.__cause__
    return False


class PgUnitOfWork:
    def __init__(self, session_factory: async_sessionmaker, jobs: JobQueue) -> None:
        """`session_factory` makes the SQLAlchemy session of each `async with` (`self.db`)."""
        self._session_factory = session_factory
        self._jobs = jobs
        self._deferred: list[Job] = []
        self.db: AsyncSession | None = None

    def _open(self, db: AsyncSession) -> None:
        """Build the domain's repositories on this transaction's session."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        self.db = self._session_factory()
        self._deferred = []
        self._open(self.db)
        return self

    async def __aexit__(self, exc_type, exc, traceback) -> None:
        assert self.db is not None
        try:
            await self.db.rollback()  # no-op after a commit; discards anything uncommitted
            await self.db.close()
        except Exception as cleanup:  # on a lost connection: the first error tells what happened
            exc = exc or cleanup
        finally:
            self._deferred = []
        if isinstance(exc, PoolTimeout):
            raise StorageUnavailable("the database is busy: no connection came free in time; try again") from exc
        if exc is not None and unreachable(exc):
            raise StorageUnavailable("the database is unreachable") from exc

    def defer(self, job: Job) -> None:
        self._deferred.append(job)

    async def commit(self) -> None:
        assert self.db is not None
        deferred, self._deferred = self._deferred, []
        pending = [PendingJob(uuid.uuid4(), job, datetime.now(UTC)) for job in deferred]
        if pending:
            await record_jobs(self.db, pending)
        await self.db.commit()
        if pending:
            await self._hand_over(pending)

    async def _hand_over(self, pending: list[PendingJob]) -> None:
        """Now, if the broker takes them within a moment; else the relay does later (RelayJobs)."""
        try:
            async with asyncio.timeout(HAND_OVER_SECONDS):
                for item in pending:
                    await self._jobs.enqueue(item.job)
        except (JobQueueUnavailable, TimeoutError) as exc:
            log.warning("%d job(s) wait in the outbox for the broker: %s", len(pending), exc or "timed out")
            return
        try:
            async with self._session_factory() as session:
                await forget_sent(session, [item.id for item in pending])
                await session.commit()
        except (OperationalError, OSError, DBAPIError):  # sent twice at worst: every job is idempotent
            log.warning("could not forget %d job(s) handed over; the relay will send them again", len(pending))

    async def rollback(self) -> None:
        assert self.db is not None
        await self.db.rollback()
        self._deferred = []
