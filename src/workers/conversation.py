"""Conversation actors: answers whose API process died are failed and settled (every minute)."""

from __future__ import annotations

import dramatiq

from src.core.conversation.progress import RECOVER_JOB
from src.workers.runtime import services


@dramatiq.actor(actor_name=RECOVER_JOB, max_retries=3, min_backoff=10_000, time_limit=600_000)
async def recover_stalled_answers() -> None:
    await services().recover_stalled_answers().execute()
