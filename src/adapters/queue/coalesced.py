"""A job asked for often and needed once per moment (a worker run that drains what is waiting): the asks of
one `window` make one send. Asks that come while it is being sent make the next one, so nothing waits unseen."""

from __future__ import annotations

import asyncio
import logging

from src.ports.shared import Job, JobQueue, JobQueueUnavailable

log = logging.getLogger(__name__)


class CoalescedJob:
    def __init__(self, jobs: JobQueue, job: Job, window: float = 0.05) -> None:
        self._jobs = jobs
        self._job = job
        self._window = window
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task] = set()  # held so the loop does not drop them

    def __call__(self) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._window, self._send)

    def _send(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self._enqueue())
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _enqueue(self) -> None:
        try:
            await self._jobs.enqueue(self._job)
        except JobQueueUnavailable as exc:  # the periodic run picks up what waits
            log.warning("could not ask for %s now (%s); its periodic run will", self._job.name, exc)
