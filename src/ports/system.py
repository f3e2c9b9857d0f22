"""Ports of the system module: worker probes prove that jobs flow from the app through a worker to the DB."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol, runtime_checkable
from uuid import UUID

from src.ports.shared import JobOutbox, UnitOfWork


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


@dataclass(frozen=True, slots=True)
class Schedule:
    """A job run every `period`, at `offset` past each period boundary (UTC epoch based): daily at 03:00 is
    period 1 day, offset 3 hours."""

    job_name: str
    period: timedelta
    offset: timedelta = timedelta(0)


@runtime_checkable
class ScheduleRepository(Protocol):
    async def claim_due(self, job_name: str, now: datetime, next_run_at: datetime) -> bool:
        """True for exactly one caller per due run: the stored run time is <= now and is moved to
        `next_run_at`. A schedule seen for the first time is stored as due at `next_run_at`; a stored time
        later than `next_run_at` (the schedule moved earlier) is pulled in."""
        ...


@dataclass(frozen=True, slots=True)
class QueueDepth:
    queue: str
    messages: int  # waiting to be taken by a worker
    oldest_age_seconds: float  # how long the oldest of them has waited (0: none)


@dataclass(frozen=True, slots=True)
class Operations:
    """What an operator's scraper reads at each scrape: states that are cheaper to count than to track."""

    documents: dict[str, int]  # by status
    chunks: int  # of ready documents
    open_reservations: int  # budget reservations not settled yet
    unsent_jobs: int  # in the job outbox: committed, not handed to the broker yet
    queues: tuple[QueueDepth, ...]  # () when the broker cannot be inspected (Redis, RabbitMQ)


@runtime_checkable
class OperationsRepository(Protocol):
    async def read(self) -> Operations: ...


class Prunable(StrEnum):
    """What grows without bound and may go once older than its horizon."""

    WEBHOOK_EVENTS = "webhook_events"  # processed Stripe events (their ids guard against replays meanwhile)
    AUDIT_EVENTS = "audit_events"
    SENT_EMAILS = "sent_emails"
    USAGE_DETAIL = "usage_detail"  # settled per-call usage; the per-day totals (budgets, reports) stay
    THROTTLE_ROWS = "throttle_rows"  # sign-in attempt windows and rate-limit buckets no longer limiting
    EXPIRED_CREDENTIALS = "expired_credentials"  # sessions, one-time tokens, OAuth states past their expiry
    HANDLED_JOBS = "handled_jobs"  # worker probes (the job outbox deletes its entries once sent)


class RetentionRepository(Protocol):
    async def prune(self, kind: Prunable, before: datetime, limit: int) -> int:
        """Deletes up to `limit` rows of `kind` older than `before`; returns how many went."""
        ...


class SystemUnitOfWork(UnitOfWork, Protocol):
    probes: WorkerProbeRepository
    retention: RetentionRepository
    schedules: ScheduleRepository
    outbox: JobOutbox
    operations: OperationsRepository

