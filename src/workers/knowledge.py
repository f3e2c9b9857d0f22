"""Knowledge actors: ingest a batch of documents; build their part of the knowledge graph; fill a new
embedding space and switch to it; check the keyword index; re-queue documents whose job was lost."""

from __future__ import annotations

import logging
from uuid import UUID

import dramatiq

from src.core.knowledge.documents import GIVE_UP_JOB, INGEST_JOB
from src.core.knowledge.ingestion import GRAPH_JOB, KEYWORD_INDEX_JOB, REQUEUE_JOB
from src.core.knowledge.spaces import REEMBED_JOB
from src.ports.shared import NotFound
from src.workers.runtime import services

log = logging.getLogger(__name__)


def _ids(raw: list[str]) -> list[UUID]:
    return [UUID(document_id) for document_id in raw]


@dramatiq.actor(actor_name=INGEST_JOB, max_retries=8, min_backoff=1000, max_backoff=300_000, time_limit=3_600_000,
                on_retry_exhausted=GIVE_UP_JOB)
async def ingest_documents(document_ids: list[str]) -> None:
    await services().ingest_documents().execute(_ids(document_ids))


@dramatiq.actor(actor_name=GRAPH_JOB, max_retries=8, min_backoff=1000, max_backoff=300_000, time_limit=3_600_000)
async def build_graph(document_ids: list[str]) -> None:
    """Runs again safely: each document's part of the graph is replaced, not added to."""
    await services().build_document_graph().execute(_ids(document_ids))


@dramatiq.actor(actor_name=KEYWORD_INDEX_JOB, max_retries=0)
async def check_keyword_index() -> None:
    """Periodic (every KEEL_KEYWORD_INDEX_CHECK_MINUTES): the next run tries again."""
    await services().check_keyword_index().execute()


@dramatiq.actor(actor_name=GIVE_UP_JOB, max_retries=5)
async def give_up_ingestion(message: dict, retries: dict) -> None:
    """Dramatiq calls this once the ingestion job has used its last retry (`on_failure` would call it on
    every failed attempt); the reason is the last line of the last attempt's traceback."""
    last_error = (message.get("options", {}).get("traceback") or "").strip().splitlines()[-1:]
    reason = last_error[0] if last_error else f"gave up after {retries.get('retries')} retries"
    await services().give_up_ingestion().execute(_ids(message["kwargs"]["document_ids"]), reason)


@dramatiq.actor(actor_name=REEMBED_JOB, max_retries=20, min_backoff=2000, max_backoff=600_000,
                time_limit=24 * 3_600_000)
async def reembed(space: str) -> None:
    try:
        await services().reembed().execute(space)
    except NotFound:
        log.warning("embedding space %s is gone; nothing to re-embed", space)


@dramatiq.actor(actor_name=REQUEUE_JOB, max_retries=0)
async def requeue_stuck_documents() -> None:
    """Periodic (every 5 minutes): the next run tries again."""
    await services().requeue_stuck_documents().execute()
