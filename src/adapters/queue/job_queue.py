"""JobQueue on Dramatiq: sends a message by actor name, so the app never imports the worker code."""

from __future__ import annotations

import dramatiq

from src.ports.shared import Job

DEFAULT_QUEUE = "default"


class DramatiqJobQueue:
    def __init__(self, broker: dramatiq.Broker, queues: dict[str, str] | None = None) -> None:
        self._broker = broker
        self._queues = queues or {}

    def enqueue(self, job: Job) -> None:
        message = dramatiq.Message(
            queue_name=self._queues.get(job.name, DEFAULT_QUEUE),
            actor_name=job.name,
            args=(),
            kwargs=dict(job.kwargs),
            options={},
        )
        self._broker.enqueue(message)
