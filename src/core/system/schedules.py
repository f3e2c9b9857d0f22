"""Periodic jobs: every worker process asks now and then which scheduled jobs are due; the database lets
exactly one of them enqueue each run, so N workers do not mean N runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from src.ports.shared import Clock, Job
from src.ports.system import Schedule, SystemUnitOfWork

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
