"""Periodic jobs in worker processes: a Dramatiq middleware whose thread asks, every `interval` seconds,
which scheduled jobs are due (core `EnqueueDueJobs`; the database makes one process win each run), and
relays the jobs the outbox still holds (core `RelayJobs`)."""

from __future__ import annotations

import logging
import threading

import dramatiq
from dramatiq.asyncio import get_event_loop_thread

from src.workers.runtime import services

log = logging.getLogger(__name__)


class PeriodicJobs(dramatiq.Middleware):
    def __init__(self, interval: float = 30.0) -> None:
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker, worker) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="keel-periodic-jobs", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker, worker) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                enqueued = get_event_loop_thread().run_coroutine(services().enqueue_due_jobs().execute())
                if enqueued:
                    log.info("enqueued scheduled jobs: %s", ", ".join(enqueued))
                get_event_loop_thread().run_coroutine(services().relay_jobs().execute())
            except Exception:  # the next tick tries again; a worker must not die of a schedule check
                log.exception("could not check scheduled jobs")
