"""Answering a message: retrieval, budget reservation and the model call, streamed token by token.

No database session is open while tokens flow: everything the answer needs is read first, the user's
message and an empty `streaming` answer are written with the reservation in one short transaction, and the
outcome (complete, cancelled with the partial text, or failed) is written with the settled usage in another.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from src.core.conversation.conversations import load_owned, new_conversation, owner_of
from src.core.conversation.live import Delta, LiveAnswer, LiveAnswers
from src.core.conversation.prompting import chat_request, cited_sources
from src.core.conversation.safety import looks_like_injection
from src.core.llm.budget import OFFLINE, BudgetDecision, spender_of
from src.core.llm.calls import ModelCalls
from src.core.llm.resilience import Attempt
from src.ports.billing import Entitlement, EntitlementChecker
from src.ports.conversation import (
    ChatSettings,
    Conversation,
    ConversationUnitOfWork,
    Message,
    MessageRole,
    MessageStatus,
    Retriever,
    Source,
)
from src.ports.identity import AccessPolicy, Permission, Principal
from src.ports.metering import Owner
from src.ports.models import (
    ChatRequest,
    Finished,
    ModelRoute,
    Passage,
    PromptLibrary,
    TextDelta,
    TokenCounter,
    Usage,
)
from src.ports.shared import Clock, InvalidInput, StorageUnavailable

log = logging.getLogger(__name__)
ANSWER_TEMPLATE = "rag_answer"
# past this, an outcome the database never took is left to the sweep (a worker fails it from its checkpoint)
OUTCOME_RETRY_SECONDS = 600.0
CONTEXT_ALLOWANCE = 200  # tokens of template text around the passages


@dataclass(frozen=True, slots=True)
class Started:
    conversation_id: UUID
    message: Message  # the assistant message, status streaming


ChatEvent = Started | Delta | Message


def check_question(content: str, settings: ChatSettings) -> str:
    text = content.strip()
    if not text:
        raise InvalidInput("the message is empty", field="content")
    if len(text) > settings.max_input_chars:
        raise InvalidInput(f"the message is longer than {settings.max_input_chars} characters", field="content")
    return text


def _discard(*tasks: asyncio.Task[Any]) -> None:
    """Cancels the tasks still running; the outcome of finished ones is consumed (not logged as lost)."""
    for task in tasks:
        if not task.done():
            task.cancel()
        elif not task.cancelled():
            task.exception()


@dataclass
class _Turn:
    """What one answer needs, read before the model is called."""

    workspace_id: UUID
    question: str
    history: list[Message]
    passages: list[Passage]
    answer: Message
    decision: BudgetDecision
    committed: asyncio.Future[bool]  # whether the question, the empty answer and the reservation were stored
    asked_at: float  # time.monotonic() when the request arrived: what the user waits is counted from here


class SendMessage:
    """- Stores the user's message and streams the assistant's answer (Started, Deltas, the final Message).
    - Retrieval starts at once, alongside reading the conversation and the entitlement.
    - The budget is reserved before the call and settled on the usage the provider reports (estimated
      from the text when a stream is cut short); past the soft cap the plan's cheaper model answers.
    - Errors before the first token are retried / fall back; after it the answer fails with what it has."""

    def __init__(self, uow: Callable[[], ConversationUnitOfWork], reads: Callable[[], ConversationUnitOfWork],
                 entitlements: EntitlementChecker, retriever: Retriever, calls: ModelCalls, prompts: PromptLibrary,
                 counter: TokenCounter, live: LiveAnswers, clock: Clock, settings: ChatSettings,
                 access: AccessPolicy) -> None:
        """`reads`: units of work for reads only, without a transaction (each read is one round trip)."""
        self._uow = uow
        self._access = access
        self._reads = reads
        self._entitlements = entitlements
        self._retriever = retriever
        self._calls = calls
        self._prompts = prompts
        self._counter = counter
        self._live = live
        self._clock = clock
        self._settings = settings

    async def execute(self, caller: Principal, workspace_id: UUID, conversation_id: UUID | None,
                      content: str, channel: str = "graphql", create: bool = False) -> AsyncIterator[ChatEvent]:
        """`channel`: the API the question came through, recorded with its usage. `create`: a conversation id
        that does not exist yet is created with that id (a client that names its chats, as the AI SDK does);
        one that is someone else's is still NotFound."""
        asked_at = time.monotonic()
        await self._access.require(caller, Permission.CONTENT_WRITE, workspace_id)
        question = check_question(content, self._settings)
        # the passages and the entitlement are read while the conversation is read
        retrieval = asyncio.create_task(self._passages(workspace_id, question))
        entitlement = asyncio.create_task(self._entitlements.entitlement(workspace_id))
        try:
            turn, live = await self._prepare(caller, workspace_id, conversation_id, question, retrieval,
                                             entitlement, asked_at, channel, create)
        finally:
            _discard(retrieval, entitlement)
        yield Started(turn.answer.conversation_id, turn.answer)
        async for event in self._live.follow(live, 0):
            yield event

    async def _passages(self, workspace_id: UUID, question: str) -> list[Passage]:
        if self._settings.retrieval_k <= 0:
            return []
        return await self._retriever.retrieve(workspace_id, question, self._settings.retrieval_k)

    async def _prepare(self, caller: Principal, workspace_id: UUID, conversation_id: UUID | None, question: str,
                       retrieval: asyncio.Task[list[Passage]], entitlement: asyncio.Task[Entitlement],
                       asked_at: float, channel: str, create: bool) -> tuple[_Turn, LiveAnswer]:
        now = self._clock.now()
        conversation, history, new = await self._conversation(owner_of(caller), workspace_id, conversation_id,
                                                              question, now, create)
        passages = await retrieval
        estimate = (sum(self._counter.count("", text) for text in [question, *(m.content for m in history),
                                                                    *(p.text for p in passages)])
                    + CONTEXT_ALLOWANCE + self._settings.max_output_tokens)
        sources = tuple(Source(p.chunk_id, p.document_id, p.document_title, p.score, looks_like_injection(p.text))
                        for p in passages)
        asked = Message(uuid.uuid4(), conversation.id, MessageRole.USER, question, MessageStatus.COMPLETE, now,
                        completed_at=now)
        answer = Message(uuid.uuid4(), conversation.id, MessageRole.ASSISTANT, "", MessageStatus.STREAMING, now,
                         sources=sources)
        # before the transaction: one holding a pooled connection must never wait for another (under load every
        # connection ends up held by a transaction waiting for a read that waits for a free connection)
        entitled = await entitlement
        async with self._uow() as uow:
            await uow.conversations.add_turn(replace(conversation, updated_at=now), asked, answer,
                                             new=new)
            # last: the workspace's budget lock is held from here to the commit, so concurrent answers wait
            # for each other only that long (refused past the hard cap: nothing above is kept)
            decision = await self._calls.reserve(uow, entitled, spender_of(caller, channel), answer.id, estimate)
            turn = _Turn(workspace_id, question, history, passages, answer, decision,
                         asyncio.get_running_loop().create_future(), asked_at)
            # the provider request goes out while the commit is on its way; the outcome is stored after it
            live = self._live.start(answer.id, lambda live: self._generate(turn, live))
            committed = False
            try:
                await uow.commit()
                committed = True
            finally:
                turn.committed.set_result(committed)
                if not committed and live.task is not None:
                    live.task.cancel()
        log.debug("answering %s in conversation %s", answer.id, conversation.id)  # ids only: no prompt text
        return turn, live

    async def _conversation(self, owner: Owner, workspace_id: UUID, conversation_id: UUID | None, question: str,
                            now: datetime, create: bool) -> tuple[Conversation, list[Message], bool]:
        """The conversation, its recent history, and whether it is new."""
        if conversation_id is None:
            return new_conversation(workspace_id, owner, question, now), [], True
        async with self._reads() as uow:
            if create and await uow.conversations.get(conversation_id) is None:
                return replace(new_conversation(workspace_id, owner, question, now), id=conversation_id), [], True
            conversation = await load_owned(uow, conversation_id, owner, workspace_id)
            return conversation, await uow.messages.history(conversation.id, self._settings.history_messages), False

    async def _generate(self, turn: _Turn, live: LiveAnswer) -> None:
        template = self._prompts.get(ANSWER_TEMPLATE)
        started, first_token_at = turn.asked_at, None
        route: ModelRoute | None = None
        usage: Usage | None = None
        attempts: list[Attempt] = []
        status, error = MessageStatus.COMPLETE, None

        def request_for(candidate: ModelRoute) -> ChatRequest:
            return chat_request(candidate, template, turn.question, turn.passages, turn.history, self._counter,
                                self._settings.max_output_tokens, self._clock.now().date())

        try:
            async for current, event in self._calls.stream(turn.decision, request_for, attempts, template.ref):
                route, live.model = current, current.model  # the model is stored with the checkpoints
                if isinstance(event, TextDelta) and event.text:
                    first_token_at = first_token_at or time.monotonic()
                    live.append(event.text)
                elif isinstance(event, Finished):
                    usage = event.usage
        except asyncio.CancelledError:
            status, error = MessageStatus.CANCELLED, "stopped" if live.stopped else "the client went away"
            await asyncio.shield(self._store(turn, live, route, usage, template.ref, status, error, started,
                                             first_token_at, request_for))
            raise
        except Exception as exc:
            status, error = MessageStatus.FAILED, f"{type(exc).__name__}: {exc}"[:1000]
            log.warning("answer %s failed: %s", turn.answer.id, error)  # the log handlers redact PII
        await self._store(turn, live, route, usage, template.ref, status, error, started, first_token_at,
                          request_for)

    async def _store(self, turn: _Turn, live: LiveAnswer, route: ModelRoute | None, usage: Usage | None,
                     template_ref: str, status: MessageStatus, error: str | None, started: float,
                     first_token_at: float | None, request_for: Callable[[ModelRoute], ChatRequest]) -> None:
        if not await turn.committed:
            return  # nothing of this turn was stored: there is nothing to complete or settle
        text = live.text_from(0)
        if usage is None:  # cut short: count what was sent and what came back
            usage = Usage(0, 0)
            if route is not None:
                request = request_for(route)
                sent = request.system + "".join(m.content for m in request.messages)
                usage = Usage(self._counter.count(route.model, sent), self._counter.count(route.model, text))
        cost = self._calls.cost(route, usage)
        now = self._clock.now()
        final = replace(turn.answer, content=text, status=status, model=route.model if route else None,
                        sources=cited_sources(text, turn.answer.sources, route.model if route else OFFLINE),
                        template=template_ref, prompt_tokens=usage.prompt_tokens,
                        completion_tokens=usage.completion_tokens, cost_usd=cost, error=error,
                        latency_ms=int((time.monotonic() - started) * 1000),
                        ttft_ms=int((first_token_at - started) * 1000) if first_token_at else None, completed_at=now)
        stored = await self._write_outcome(turn, live, final, route, usage, template_ref, cost)
        if live.final is None:
            live.finish(stored)

    async def _write_outcome(self, turn: _Turn, live: LiveAnswer, final: Message, route: ModelRoute | None,
                             usage: Usage, template_ref: str, cost: float) -> Message:
        """The outcome and its settled usage, in one transaction. While the database is unreachable the
        followers get the outcome at once and the write is retried (bounded), so the answer ends as it did
        when the database is back, instead of staying `streaming` until a worker's sweep cuts it short."""
        deadline, pause = time.monotonic() + OUTCOME_RETRY_SECONDS, 0.25
        while True:
            try:
                async with self._uow() as uow:
                    if await uow.messages.finish(final):
                        await self._calls.settle(uow, turn.decision, route, usage, template_ref, cost)
                        await uow.commit()
                        return final
                    # the sweep failed it first (this process stalled, or the write was retried): that stands
                    return await uow.messages.get(final.id) or final
            except StorageUnavailable:
                if time.monotonic() + pause > deadline:
                    raise
                if live.final is None:
                    log.warning("answer %s: the database is unreachable; its outcome is stored once it is back",
                                final.id)
                    live.finish(final)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)

