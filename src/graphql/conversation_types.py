"""GraphQL types of conversations: conversations, messages with their sources and usage, stream events."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from uuid import UUID

import strawberry

from src.core.conversation.chat import ChatEvent, Started
from src.core.conversation.conversations import ConversationWithMessages
from src.core.conversation.live import Delta
from src.graphql.context import Info
from src.ports.conversation import Conversation, ConversationPage, Message, Source
from src.ports.metering import UsageRow


@strawberry.enum(name="MessageRole")
class MessageRoleEnum(Enum):
    USER = "user"
    ASSISTANT = "assistant"


@strawberry.enum(name="MessageStatus")
class MessageStatusEnum(Enum):
    STREAMING = "streaming"
    COMPLETE = "complete"
    CANCELLED = "cancelled"
    FAILED = "failed"


@strawberry.enum
class ChatEventKind(Enum):
    STARTED = "started"
    DELTA = "delta"
    FINISHED = "finished"
    ERROR = "error"


@strawberry.type(name="Source")
class SourceType:
    chunk_id: strawberry.ID
    document_id: strawberry.ID
    document_title: str
    score: float
    flagged: bool = strawberry.field(description="the passage looked like it tried to instruct the model")

    @classmethod
    def of(cls, source: Source) -> SourceType:
        return cls(chunk_id=strawberry.ID(str(source.chunk_id)), document_id=strawberry.ID(str(source.document_id)),
                   document_title=source.document_title, score=source.score, flagged=source.flagged)


@strawberry.enum(name="Rating")
class RatingEnum(Enum):
    UP = "up"
    DOWN = "down"


@strawberry.type(name="AnswerFeedback", description="The answer's owner's rating.")
class AnswerFeedbackType:
    rating: RatingEnum
    comment: str | None
    rated_at: datetime


@strawberry.type(name="Message")
class MessageType:
    id: strawberry.ID
    conversation_id: strawberry.ID
    role: MessageRoleEnum
    content: str
    status: MessageStatusEnum
    model: str | None
    template: str | None = strawberry.field(description="prompt template as name@version")
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_ms: int | None
    ttft_ms: int | None
    sources: list[SourceType]
    error: str | None
    created_at: datetime
    completed_at: datetime | None
    feedback: AnswerFeedbackType | None = None

    @classmethod
    def of(cls, message: Message) -> MessageType:
        return cls(id=strawberry.ID(str(message.id)), conversation_id=strawberry.ID(str(message.conversation_id)),
                   role=MessageRoleEnum(message.role.value), content=message.content,
                   status=MessageStatusEnum(message.status.value), model=message.model, template=message.template,
                   prompt_tokens=message.prompt_tokens, completion_tokens=message.completion_tokens,
                   cost_usd=message.cost_usd, latency_ms=message.latency_ms, ttft_ms=message.ttft_ms,
                   sources=[SourceType.of(source) for source in message.sources], error=message.error,
                   created_at=message.created_at, completed_at=message.completed_at,
                   feedback=AnswerFeedbackType(rating=RatingEnum(message.rating), comment=message.rating_comment,
                                               rated_at=message.rated_at)
                   if message.rating and message.rated_at else None)


@strawberry.type(name="Conversation")
class ConversationType:
    id: strawberry.ID
    title: str
    created_at: datetime
    updated_at: datetime
    workspace_id: strawberry.Private[UUID]
    loaded: strawberry.Private[list[Message] | None] = None  # read with the conversation, when it was

    @strawberry.field(description="The newest `last` messages, oldest first.")
    async def messages(self, info: Info, last: int = 20) -> list[MessageType]:
        found = self.loaded
        if found is None:  # listed without its messages: read them for whoever may
            caller, get = await info.context.principal(), info.context.services.get_conversation()
            found = (await get.execute(caller, self.workspace_id, UUID(self.id), max(1, min(last, 500)))).messages
        return [MessageType.of(message) for message in found[-last:]] if last > 0 else []

    @classmethod
    def of(cls, conversation: Conversation, messages: list[Message] | None = None) -> ConversationType:
        return cls(id=strawberry.ID(str(conversation.id)), title=conversation.title,
                   created_at=conversation.created_at, updated_at=conversation.updated_at,
                   workspace_id=conversation.workspace_id, loaded=messages)

    @classmethod
    def with_messages(cls, found: ConversationWithMessages) -> ConversationType:
        return cls.of(found.conversation, found.messages)


@strawberry.type
class ConversationConnection:
    items: list[ConversationType]
    next_cursor: str | None

    @classmethod
    def of(cls, page: ConversationPage) -> ConversationConnection:
        return cls(items=[ConversationType.of(item) for item in page.conversations], next_cursor=page.next_cursor)


@strawberry.type
class DeletedConversation:
    id: strawberry.ID


@strawberry.type
class UsageDay:
    day: date
    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    channel: str = strawberry.field(description="the API the requests came through: graphql, openai, ai-sdk, "
                                                "worker")

    @classmethod
    def of(cls, row: UsageRow) -> UsageDay:
        return cls(day=row.day, model=row.model, requests=row.requests, prompt_tokens=row.prompt_tokens,
                   completion_tokens=row.completion_tokens, cost_usd=row.cost_usd, channel=row.channel)


@strawberry.type
class UsageReportType:
    days: list[UsageDay]
    total_tokens: int
    total_cost_usd: float

    @classmethod
    def of(cls, rows: list[UsageRow]) -> UsageReportType:
        return cls(days=[UsageDay.of(row) for row in rows],
                   total_tokens=sum(row.prompt_tokens + row.completion_tokens for row in rows),
                   total_cost_usd=sum(row.cost_usd for row in rows))


@strawberry.type
class ChatError:
    code: str
    message: str
    limit: str | None = None


@strawberry.type(description="One step of a streamed answer: STARTED (ids), DELTA (text at offset), "
                             "FINISHED (the stored message with usage and sources), or ERROR.")
class ChatEventType:
    kind: ChatEventKind
    conversation_id: strawberry.ID | None = None
    message_id: strawberry.ID | None = None
    offset: int = 0
    text: str = ""
    message: MessageType | None = None
    error: ChatError | None = None

    @classmethod
    def of(cls, event: ChatEvent, message_id) -> ChatEventType:
        ident = strawberry.ID(str(message_id))
        if isinstance(event, Started):
            return cls(kind=ChatEventKind.STARTED, conversation_id=strawberry.ID(str(event.conversation_id)),
                       message_id=strawberry.ID(str(event.message.id)), message=MessageType.of(event.message))
        if isinstance(event, Delta):
            return cls(kind=ChatEventKind.DELTA, message_id=ident, offset=event.offset, text=event.text)
        return cls(kind=ChatEventKind.FINISHED, message_id=ident, message=MessageType.of(event),
                   conversation_id=strawberry.ID(str(event.conversation_id)))
