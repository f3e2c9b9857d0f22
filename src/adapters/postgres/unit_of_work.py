"""SQLAlchemy unit of work: one session, one transaction; deferred jobs are recorded in it (the outbox) and
handed to the broker after the commit."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import Self

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from src.adapters.postgres.graph_age import AgeGraphStore
from src.adapters.postgres.graph_tables import TableGraphStore
from src.adapters.postgres.repositories.accounts import PgMembershipRepository, PgUserRepository, PgWorkspaceRepository
from src.adapters.postgres.repositories.auth import (
    PgApiKeyRepository,
    PgAttemptLog,
    PgAuditLog,
    PgOAuthRepository,
    PgOneTimeTokenRepository,
    PgSessionRepository,
)
from src.adapters.postgres.repositories.billing import (
    PgBillingRepository,
    PgReconciliationLog,
    PgStripeEventLog,
)
from src.adapters.postgres.repositories.conversation import (
    PgConversationRepository,
    PgMessageRepository,
    PgUsageLedger,
)
from src.adapters.postgres.repositories.knowledge import (
    PgChunkRepository,
    PgDocumentRepository,
    PgEmbeddingSpaceRepository,
)
from src.adapters.postgres.repositories.system import (
    PgJobOutbox,
    PgScheduleRepository,
    PgWorkerProbeRepository,
    forget_sent,
    record_jobs,
)
from src.adapters.postgres.search import PgSearchIndex, PgSearchSettings
from src.ports.shared import Job, JobQueue, JobQueueUnavailable, PendingJob, StorageUnavailable

log = logging.getLogger(__name__)
HAND_OVER_SECONDS = 2.0  # a broker that does not take the jobs by then gets them from the relay


class SqlAlchemyUnitOfWork:
    def __init__(self, session_factory: async_sessionmaker, jobs: JobQueue,
                 search_settings: PgSearchSettings | None = None, graph_store: str = "age") -> None:
        """`session_factory` makes SQLAlchemy sessions (one per unit of work, `self.session`); `self.sessions`
        is the repository of sign-in sessions, as the identity ports name it."""
        self._session_factory = session_factory
        self._graph_store = AgeGraphStore if graph_store == "age" else TableGraphStore
        self._jobs = jobs
        self._search_settings = search_settings or PgSearchSettings()
        self._deferred: list[Job] = []
        self.session: AsyncSession | None = None

    async def __aenter__(self) -> Self:
        self.session = self._session_factory()
        self._deferred = []
        session = self.session
        self.probes = PgWorkerProbeRepository(session)
        self.schedules = PgScheduleRepository(session)
        self.outbox = PgJobOutbox(session)
        self.users = PgUserRepository(session)
        self.workspaces = PgWorkspaceRepository(session)
        self.memberships = PgMembershipRepository(session)
        self.sessions = PgSessionRepository(session)
        self.api_keys = PgApiKeyRepository(session)
        self.one_time_tokens = PgOneTimeTokenRepository(session)
        self.oauth = PgOAuthRepository(session)
        self.audit = PgAuditLog(session)
        self.attempts = PgAttemptLog(session)
        self.billing = PgBillingRepository(session)
        self.stripe_events = PgStripeEventLog(session)
        self.reconciliation = PgReconciliationLog(session)
        self.conversations = PgConversationRepository(session)
        self.messages = PgMessageRepository(session)
        self.usage = PgUsageLedger(session)
        self.documents = PgDocumentRepository(session)
        self.chunks = PgChunkRepository(session)
        self.spaces = PgEmbeddingSpaceRepository(session)
        self.search = PgSearchIndex(session, self._search_settings)
        self.graph = self._graph_store(session)
        return self

    async def __aexit__(self, exc_type, exc, traceback) -> None:
        assert self.session is not None
        try:
            await self.session.rollback()  # no-op after a commit; discards anything uncommitted
        finally:
            await self.session.close()
            self._deferred = []
        if isinstance(exc, PoolTimeout):
            raise StorageUnavailable("the database is busy: no connection came free in time; try again") from exc
        if isinstance(exc, (OperationalError, OSError)) or (
            isinstance(exc, DBAPIError) and exc.connection_invalidated
        ):
            raise StorageUnavailable("the database is unreachable") from exc

    def defer(self, job: Job) -> None:
        self._deferred.append(job)

    async def commit(self) -> None:
        assert self.session is not None
        deferred, self._deferred = self._deferred, []
        pending = [PendingJob(uuid.uuid4(), job, datetime.now(UTC)) for job in deferred]
        if pending:
            await record_jobs(self.session, pending)
        await self.session.commit()
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
        assert self.session is not None
        await self.session.rollback()
        self._deferred = []
