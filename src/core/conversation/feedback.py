"""Feedback on answers and what a workspace's answers cost and did: a rating by the answer's owner, the
export of ratings per template version (to compare prompt versions), and analytics computed in SQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from uuid import UUID

from src.core.conversation.conversations import load_owned, owner_of
from src.ports.conversation import (
    AnswerAnalytics,
    ConversationUnitOfWork,
    Message,
    MessageRole,
    MessageStatus,
    RatedAnswer,
    Rating,
)
from src.ports.identity import AccessPolicy, Permission, Principal
from src.ports.shared import Clock, InvalidInput, NotFound
from src.ports.telemetry import Telemetry

MAX_COMMENT = 2000
MAX_DAYS = 366
MAX_EXPORT = 5000


class RateAnswer:
    """- Only the conversation's owner rates its answers (anyone else: NotFound, as for reading it).
    - Only an answer that ended (complete, failed or stopped) can be rated; rating again replaces the rating.
    - The comment is optional, up to MAX_COMMENT characters."""

    def __init__(self, uow: Callable[[], ConversationUnitOfWork], clock: Clock, access: AccessPolicy,
                 telemetry: Telemetry) -> None:
        self._uow = uow
        self._clock = clock
        self._access = access
        self._telemetry = telemetry

    async def execute(self, caller: Principal | None, workspace_id: UUID, message_id: UUID, rating: Rating,
                      comment: str | None = None) -> Message:
        caller = await self._access.require(caller, Permission.CONTENT_READ, workspace_id)
        comment = " ".join(comment.split()) if comment else None
        if comment and len(comment) > MAX_COMMENT:
            raise InvalidInput(f"a comment has at most {MAX_COMMENT} characters", field="comment")
        async with self._uow() as uow:
            message = await uow.messages.get(message_id)
            if message is None:
                raise NotFound("no such message")
            await load_owned(uow, message.conversation_id, owner_of(caller), workspace_id)
            if message.role is not MessageRole.ASSISTANT:
                raise InvalidInput("only answers can be rated", field="messageId")
            if message.status is MessageStatus.STREAMING:
                raise InvalidInput("the answer is still being written; rate it once it ends", field="messageId")
            await uow.messages.rate(message_id, rating, comment or None, self._clock.now())
            await uow.commit()
            rated = await uow.messages.get(message_id) or message
        self._telemetry.answer_rated(message.template or "none", rating.value)
        return rated


class _WorkspaceReport:
    def __init__(self, reads: Callable[[], ConversationUnitOfWork], clock: Clock, access: AccessPolicy) -> None:
        self._reads = reads
        self._clock = clock
        self._access = access

    async def _since(self, caller: Principal | None, workspace_id: UUID, days: int) -> date:
        await self._access.require(caller, Permission.WORKSPACE_MANAGE, workspace_id)
        if not 1 <= days <= MAX_DAYS:
            raise InvalidInput(f"days must be between 1 and {MAX_DAYS}", field="days")
        return self._clock.now().date() - timedelta(days=days - 1)


class ExportFeedback(_WorkspaceReport):
    """- For the workspace's owners and admins (workspace:manage): its rated answers over the last `days`,
      newest first, optionally of one template version ("rag_answer@2"), at most MAX_EXPORT rows."""

    async def execute(self, caller: Principal | None, workspace_id: UUID, days: int = 30,
                      template: str | None = None, limit: int = 1000) -> list[RatedAnswer]:
        since = await self._since(caller, workspace_id, days)
        if not 1 <= limit <= MAX_EXPORT:
            raise InvalidInput(f"limit must be between 1 and {MAX_EXPORT}", field="limit")
        async with self._reads() as uow:
            return await uow.analytics.rated(workspace_id, template, since, limit)


class AnswerAnalyticsReport(_WorkspaceReport):
    """- For the workspace's owners and admins: its answers over the last `days` — cost and tokens per day x
      model x template version, TTFT p50/p95 per model, ratings per template version."""

    async def execute(self, caller: Principal | None, workspace_id: UUID, days: int = 30) -> AnswerAnalytics:
        since = await self._since(caller, workspace_id, days)
        async with self._reads() as uow:
            return await uow.analytics.analytics(workspace_id, since)
