"""System actors: process a worker probe; prune data past its retention horizon."""

from __future__ import annotations

import logging
from uuid import UUID

import dramatiq

from src.core.system.probes import PROCESS_PROBE_JOB
from src.core.system.retention import PRUNE_JOB
from src.ports.shared import NotFound
from src.workers.runtime import WORKER_NAME, services

log = logging.getLogger(__name__)


@dramatiq.actor(actor_name=PROCESS_PROBE_JOB, max_retries=5, min_backoff=500)
async def process_probe(probe_id: str) -> None:
    try:
        await services().process_worker_probe().execute(UUID(probe_id), worker=WORKER_NAME)
    except NotFound:
        log.warning("worker probe %s is gone; nothing to do", probe_id)


@dramatiq.actor(actor_name=PRUNE_JOB, max_retries=0)
async def prune_expired_data() -> None:
    """Hourly: the next run goes on where this one stopped."""
    await services().prune_expired_data().execute()
