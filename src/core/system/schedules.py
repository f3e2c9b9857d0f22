"""Periodic jobs: every worker process asks now and then which scheduled jobs are due; the database lets
exactly one of them enqueue each run, so N workers do not mean N runs. And the relay of the job outbox."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

from src.ports.shared import Clock, Job, JobQueue, JobQueueUnavailable
from src.ports.system import Schedule, SystemUnitOfWork

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
log = logging.getLogger(__name__)


def next_run(schedule: Schedule, after: datetime) -> datetime:
    """The first run time strictly after `after`."""
    periods = (after - EPOCH - schedule.offset) // schedule.period
    return EPOCH + schedule.offset + (periods + 1) * schedule.period


class EnqueueDueJobs:
    """- Enqueues the due runs of `schedules` (after the commit); returns the names enqueued."""

    def __init__(self, uow: Callable[[], SystemUnitOfWork], clock: Clock, schedules: list[Schedule]) -> None:
        self._uow = uow
        self._clock = clock
        self._schedules = schedules

    async def execute(self) -> list[str]:
        now = self._clock.now()
        enqueued = []
        async with self._uow() as uow:
            for schedule in self._schedules:
                if await uow.schedules.claim_due(schedule.job_name, now, next_run(schedule, now)):
                    uow.defer(Job(schedule.job_name))
                    enqueued.append(schedule.job_name)
            await uow.commit()
        return enqueued


class RelayJobs:
    """- Hands the broker the jobs the outbox still holds, oldest first: those whose hand-over right after
      their commit failed (the broker was away) or was cut short (the process died). Only jobs recorded
      `grace` ago or more, so a hand-over under way is not doubled; a broker still away leaves them for the
      next run. Sending one twice is harmless (every job is idempotent); losing one is not possible."""

    def __init__(self, uow: Callable[[], SystemUnitOfWork], jobs: JobQueue, clock: Clock,
                 grace: timedelta = timedelta(seconds=10), batch: int = 200) -> None:
        self._uow = uow
        self._jobs = jobs
        self._clock = clock
        self._grace = grace
        self._batch = batch

    async def execute(self) -> int:
        handed: list[UUID] = []
        async with self._uow() as uow:
            pending = await uow.outbox.pending(self._clock.now() - self._grace, self._batch)
            try:
                for item in pending:
                    await self._jobs.enqueue(item.job)
                    handed.append(item.id)
            except JobQueueUnavailable as exc:
                log.warning("the job broker is still away (%s); %d job(s) wait in the outbox", exc,
                            len(pending) - len(handed))
            if handed:
                await uow.outbox.sent(handed)
                await uow.commit()
        return len(handed)
