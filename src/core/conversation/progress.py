"""Answers in progress beyond one process: the text of every answer being generated is checkpointed every few
seconds (one write per process), so a reader connected to another process follows it from the database, and
an answer whose process died (killed, crashed, its machine gone) is failed with the text of its last checkpoint
and its reservation settled on it, instead of staying `streaming` and holding its reservation forever."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from uuid import UUID

from src.core.conversation.conversations import load_owned, owner_of
from src.core.conversation.live import LiveAnswers
from src.core.llm.budget import cost_usd
from src.ports.conversation import ChatSettings, ConversationUnitOfWork, Message, MessageStatus
from src.ports.identity import AccessPolicy, Permission, Principal
from src.ports.live import AnswerFeed
from src.ports.models import ChatModels, TokenCounter, Usage
from src.ports.shared import Clock, NotFound

log = logging.getLogger(__name__)
RECOVER_JOB = "conversation.recover_stalled_answers"
STALLED = "interrupted: the process generating this answer stopped; the text of its last checkpoint is kept"


def is_stalled(message: Message, now: datetime, settings: ChatSettings) -> bool:
    last_sign_of_life = message.progress_at or message.created_at
    return message.status is MessageStatus.STREAMING and (
        now - last_sign_of_life > timedelta(seconds=settings.stalled_after_seconds))


class SaveAnswerProgress:
    """- Stores what every answer this process generates produced since the last call, and marks each alive:
    one write for all of them. The API process calls it every `checkpoint_seconds`."""

    def __init__(self, uow: Callable[[], ConversationUnitOfWork], live: LiveAnswers, clock: Clock) -> None:
        self._uow = uow
        self._live = live
        self._clock = clock

    async def execute(self) -> int:
        progress = self._live.progress()
        if not progress:
            return 0
        async with self._uow() as uow:
            checkpoint = await uow.messages.save_progress(progress, self._clock.now())
            await uow.commit()
        self._live.stored(checkpoint.lengths)
        for message_id in checkpoint.stop:  # asked of another process: stopped here, at this checkpoint
            self._live.stop(message_id)
        return len(checkpoint.lengths)


class StopAnswer:
    """- The conversation's owner stops an answer at once: this process cancels it if it generates it (the
    text so far is kept, CANCELLED, its usage settled), else asks the process that does, over the live feed
    (at once) and in the database (at its next checkpoint, within `checkpoint_seconds`, should the feed
    lose the request). An answer that already ended is answered as it is."""

    def __init__(self, uow: Callable[[], ConversationUnitOfWork], live: LiveAnswers, feed: AnswerFeed, clock: Clock,
                 access: AccessPolicy) -> None:
        self._uow = uow
        self._live = live
        self._feed = feed
        self._clock = clock
        self._access = access

    async def execute(self, caller: Principal, workspace_id: UUID, message_id: UUID) -> Message:
        await self._access.require(caller, Permission.CONTENT_WRITE, workspace_id)
        async with self._uow() as uow:
            message = await uow.messages.get(message_id)
            if message is None:
                raise NotFound("no such message")
            await load_owned(uow, message.conversation_id, owner_of(caller), workspace_id)
            elsewhere = message.status is MessageStatus.STREAMING and self._live.get(message_id) is None
            if elsewhere:
                await uow.messages.request_stop(message_id, self._clock.now())
                await uow.commit()
        if elsewhere:
            await self._feed.stop(message_id)
        task = self._live.stop(message_id)
        if task is not None:
            await asyncio.wait([task], timeout=10)  # its outcome is stored by then
        async with self._uow() as uow:
            return await uow.messages.get(message_id) or message


class RecoverStalledAnswers:
    """- Answers that made no stored progress for `stalled_after_seconds` are failed with the text they have,
    and their reservations settled: prompt tokens as estimated when reserving, completion tokens counted in
    the stored text. Once per answer (the workers run it every minute; concurrent runs skip each other's)."""

    def __init__(self, uow: Callable[[], ConversationUnitOfWork], models: ChatModels, counter: TokenCounter,
                 clock: Clock, settings: ChatSettings) -> None:
        self._uow = uow
        self._models = models
        self._counter = counter
        self._clock = clock
        self._settings = settings

    async def execute(self, batch: int = 200) -> int:
        """Fails them all, `batch` per transaction; returns how many."""
        failed = 0
        while True:
            now = self._clock.now()
            async with self._uow() as uow:
                stalled = await uow.messages.stalled(now - timedelta(seconds=self._settings.stalled_after_seconds),
                                                     batch)
                for answer in stalled:
                    await self._fail(uow, answer, now)
                await uow.commit()
            failed += len(stalled)
            if len(stalled) < batch:
                break
        if failed:
            log.warning("failed %d stalled answers (their API process stopped mid-answer)", failed)
        return failed

    async def _fail(self, uow: ConversationUnitOfWork, answer: Message, now: datetime) -> None:
        model = answer.model or ""
        reservation = await uow.usage.unsettled(answer.id)
        # the reservation is the prompt's estimate plus the output allowance
        prompt = max(reservation.reserved_tokens - self._settings.max_output_tokens, 0) if reservation else 0
        usage = Usage(prompt, self._counter.count(model, answer.content) if answer.content else 0)
        route = self._models.route(model) if model else None
        cost = cost_usd(usage, route.input_usd_per_mtok, route.output_usd_per_mtok) if route else 0.0
        finished = await uow.messages.finish(replace(
            answer, status=MessageStatus.FAILED, error=STALLED, prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens, cost_usd=cost, completed_at=now))
        if finished and reservation is not None:
            await uow.usage.settle(reservation.id, model, usage, cost, now)
