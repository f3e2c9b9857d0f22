"""Ports every domain uses: time, transactions, background jobs, health of the things Keel depends on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, Self, runtime_checkable
from uuid import UUID

from src.ports.context import current_context


class DomainError(Exception):
    """An expected failure a caller can act on; `code` is stable, the message is for people."""

    code = "domain_error"


class NotFound(DomainError):
    code = "not_found"


class InvalidInput(DomainError):
    code = "invalid_input"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class StorageUnavailable(DomainError):
    code = "storage_unavailable"


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class Job:
    """A background job: a name the worker side knows and JSON-able arguments (ids, never objects); `context`:
    the request's (src/ports/context.py) when the job was made, so the worker's lines carry its request id."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    context: dict[str, str] = field(default_factory=current_context, compare=False)


@runtime_checkable
class JobQueue(Protocol):
    async def enqueue(self, job: Job) -> None:
        """Hands the job to the broker, off the event loop; raises JobQueueUnavailable if it cannot."""
        ...


class JobQueueUnavailable(DomainError):
    code = "job_queue_unavailable"


@dataclass(frozen=True, slots=True)
class PendingJob:
    """A job recorded with the change that caused it, not yet handed to the broker."""

    id: UUID
    job: Job
    created_at: datetime


class JobOutbox(Protocol):
    async def pending(self, recorded_before: datetime, limit: int) -> list[PendingJob]:
        """The oldest jobs not handed over yet, held until the transaction ends (others skip them)."""
        ...

    async def sent(self, ids: list[UUID]) -> None:
        """The broker has them: they leave the outbox."""
        ...


@runtime_checkable
class UnitOfWork(Protocol):
    """One transaction. Jobs deferred inside it are recorded in it (an outbox) and handed to the broker once
    it commits; a broker that is away then gets them later, from the outbox."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...

    def defer(self, job: Job) -> None: ...


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    name: str
    ok: bool
    detail: str = ""


@runtime_checkable
class HealthProbe(Protocol):
    async def check(self) -> list[ComponentHealth]: ...
