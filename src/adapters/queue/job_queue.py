"""JobQueue on Dramatiq: sends a message by actor name, so the app never imports the worker code. The
broker's client is blocking: sends run in a small pool of threads, never on the event loop."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import dramatiq

from src.ports.shared import Job, JobQueueUnavailable

DEFAULT_QUEUE = "default"


class DramatiqJobQueue:
    def __init__(self, broker: dramatiq.Broker, queues: dict[str, str] | None = None, threads: int = 4) -> None:
        self._broker = broker
        self._queues = queues or {}
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="enqueue")

    async def enqueue(self, job: Job) -> None:
        message = dramatiq.Message(
            queue_name=self._queues.get(job.name, DEFAULT_QUEUE),
            actor_name=job.name,
            args=(),
            kwargs=dict(job.kwargs),
            options={"keel_context": job.context} if job.context else {},
        )
        try:
            await asyncio.get_running_loop().run_in_executor(self._pool, self._broker.enqueue, message)
        except Exception as exc:  # every broker's own connection errors
            raise JobQueueUnavailable(f"the job broker did not take {job.name}: {type(exc).__name__}") from exc
