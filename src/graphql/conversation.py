"""Conversation fields: conversations (CRUD, a suggested title), messages, usage; and the `chat` and
`messageStream` subscriptions that stream answers token by token."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry

from src.core.conversation.chat import Started
from src.graphql.context import Info
from src.graphql.conversation_types import (
    ChatError,
    ChatEventKind,
    ChatEventType,
    ConversationConnection,
    ConversationType,
    DeletedConversation,
    MessageType,
    UsageReportType,
)
from src.graphql.errors import InvalidInputError, NotFoundError, QuotaExceededError, UnavailableError, answer
from src.graphql.ids import parse_id
from src.graphql.permissions import require
from src.ports.identity import Permission
from src.ports.shared import DomainError

ConversationResult = Annotated[
    ConversationType | NotFoundError | InvalidInputError | UnavailableError,
    strawberry.union("ConversationResult")]
ConversationsResult = Annotated[
    ConversationConnection | InvalidInputError | UnavailableError,
    strawberry.union("ConversationsResult")]
MessageResult = Annotated[
    MessageType | NotFoundError | InvalidInputError | UnavailableError,
    strawberry.union("MessageResult")]
DeleteResult = Annotated[
    DeletedConversation | NotFoundError | InvalidInputError | UnavailableError,
    strawberry.union("DeleteConversationResult")]
UsageResult = Annotated[UsageReportType | InvalidInputError | UnavailableError, strawberry.union("UsageResult")]
TitleResult = Annotated[
    ConversationType | NotFoundError | InvalidInputError | QuotaExceededError | UnavailableError,
    strawberry.union("SuggestTitleResult")]
WorkspaceId = Annotated[strawberry.ID, strawberry.argument(name="workspaceId")]


async def _caller(info: Info):
    return await info.context.principal()


def _error_event(exc: DomainError) -> ChatEventType:
    return ChatEventType(kind=ChatEventKind.ERROR, error=ChatError(code=exc.code, message=str(exc),
                                                                   limit=getattr(exc, "limit", None)))


@strawberry.type
class ConversationQuery:
    @strawberry.field(extensions=require(Permission.CONTENT_READ, "workspace_id"),
                      description="Your conversations in the workspace, most recently active first.")
    async def conversations(self, info: Info, workspace_id: WorkspaceId, first: int = 20,
                            after: str | None = None) -> ConversationsResult:
        caller, listing = await _caller(info), info.context.services.list_conversations()
        return await answer(lambda: listing.execute(caller, parse_id(workspace_id, "workspaceId"), first, after),
                            ConversationConnection.of)

    @strawberry.field(extensions=require(Permission.CONTENT_READ, "workspace_id"))
    async def conversation(self, info: Info, workspace_id: WorkspaceId, id: strawberry.ID,
                           last_messages: int = 50) -> ConversationResult:
        caller, get = await _caller(info), info.context.services.get_conversation()
        return await answer(lambda: get.execute(caller, parse_id(workspace_id, "workspaceId"), parse_id(id, "id"),
                                                last_messages), ConversationType.with_messages)

    @strawberry.field(extensions=require(Permission.CONTENT_READ, "workspace_id"),
                      description="A message by id (e.g. to catch up after a dropped stream).")
    async def message(self, info: Info, workspace_id: WorkspaceId, id: strawberry.ID) -> MessageResult:
        caller, get = await _caller(info), info.context.services.get_message()
        return await answer(lambda: get.execute(caller, parse_id(workspace_id, "workspaceId"), parse_id(id, "id")),
                            MessageType.of)

    @strawberry.field(extensions=require(Permission.CONTENT_READ, "workspace_id"),
                      description="Your model usage per day and model over the last `days`.")
    async def my_usage(self, info: Info, workspace_id: WorkspaceId, days: int = 30) -> UsageResult:
        caller, report = await _caller(info), info.context.services.usage_report()
        return await answer(lambda: report.execute(caller, parse_id(workspace_id, "workspaceId"), days),
                            UsageReportType.of)

    @strawberry.field(extensions=require(Permission.BILLING_MANAGE, "workspace_id"),
                      description="The whole workspace's model usage per day and model (owners).")
    async def workspace_usage(self, info: Info, workspace_id: WorkspaceId, days: int = 30) -> UsageResult:
        caller, report = await _caller(info), info.context.services.usage_report()
        return await answer(lambda: report.execute(caller, parse_id(workspace_id, "workspaceId"), days,
                                                   whole_workspace=True),
                            UsageReportType.of)


@strawberry.type
class ConversationMutation:
    @strawberry.mutation(extensions=require(Permission.CONTENT_WRITE, "workspace_id"))
    async def create_conversation(self, info: Info, workspace_id: WorkspaceId,
                                  title: str | None = None) -> ConversationResult:
        caller, create = await _caller(info), info.context.services.create_conversation()
        return await answer(lambda: create.execute(caller, parse_id(workspace_id, "workspaceId"), title),
                            ConversationType.of)

    @strawberry.mutation(extensions=require(Permission.CONTENT_WRITE, "workspace_id"))
    async def rename_conversation(self, info: Info, workspace_id: WorkspaceId, id: strawberry.ID,
                                  title: str) -> ConversationResult:
        caller, rename = await _caller(info), info.context.services.rename_conversation()
        return await answer(lambda: rename.execute(caller, parse_id(workspace_id, "workspaceId"), parse_id(id, "id"),
                                                   title), ConversationType.of)

    @strawberry.mutation(extensions=require(Permission.CONTENT_WRITE, "workspace_id"))
    async def delete_conversation(self, info: Info, workspace_id: WorkspaceId, id: strawberry.ID) -> DeleteResult:
        caller, delete = await _caller(info), info.context.services.delete_conversation()
        return await answer(lambda: delete.execute(caller, parse_id(workspace_id, "workspaceId"), parse_id(id, "id")),
                            lambda deleted: DeletedConversation(id=strawberry.ID(str(deleted))))

    @strawberry.mutation(extensions=require(Permission.CONTENT_WRITE, "workspace_id"),
                         description="Retitle the conversation with a title the model suggests (structured output).")
    async def suggest_conversation_title(self, info: Info, workspace_id: WorkspaceId,
                                         id: strawberry.ID) -> TitleResult:
        caller, suggest = await _caller(info), info.context.services.suggest_title()
        return await answer(lambda: suggest.execute(caller, parse_id(workspace_id, "workspaceId"),
                                                    parse_id(id, "id")), ConversationType.of)


    @strawberry.mutation(extensions=require(Permission.CONTENT_WRITE, "workspace_id"),
                         description="Stop an answer now (the text so far is kept, CANCELLED, its usage settled). "
                                     "Closing or losing the subscription does not stop it before the resume "
                                     "grace period: a reconnecting client can resume it.")
    async def stop_answer(self, info: Info, workspace_id: WorkspaceId, message_id: strawberry.ID) -> MessageResult:
        caller, stop = await _caller(info), info.context.services.stop_answer()
        return await answer(lambda: stop.execute(caller, parse_id(workspace_id, "workspaceId"),
                                                 parse_id(message_id, "messageId")), MessageType.of)


@strawberry.type
class ConversationSubscription:
    @strawberry.subscription(extensions=require(Permission.CONTENT_WRITE, "workspace_id"),
                             description="Ask a question (in a new conversation unless one is given) and receive "
                                         "the answer token by token. Closing the subscription cancels it.")
    async def chat(self, info: Info, workspace_id: WorkspaceId, content: str,
                   conversation_id: strawberry.ID | None = None) -> AsyncGenerator[ChatEventType, None]:
        message_id = None
        try:
            caller = await _caller(info)
            conversation = parse_id(conversation_id, "conversationId") if conversation_id else None
            send = info.context.services.send_message()
            async for event in send.execute(caller, parse_id(workspace_id, "workspaceId"), conversation, content):
                if isinstance(event, Started):
                    message_id = event.message.id
                yield ChatEventType.of(event, message_id)
        except DomainError as exc:
            yield _error_event(exc)

    @strawberry.subscription(extensions=require(Permission.CONTENT_READ, "workspace_id"),
                             description="Follow a message from `offset` characters: live while it is being "
                                         "generated (from its checkpoints when another API process generates "
                                         "it), else its stored text.")
    async def message_stream(self, info: Info, workspace_id: WorkspaceId, message_id: strawberry.ID,
                             offset: int = 0) -> AsyncGenerator[ChatEventType, None]:
        try:
            caller = await _caller(info)
            ident = parse_id(message_id, "messageId")
            follow = info.context.services.follow_message()
            async for event in follow.execute(caller, parse_id(workspace_id, "workspaceId"), ident, offset):
                yield ChatEventType.of(event, ident)
        except DomainError as exc:
            yield _error_event(exc)
