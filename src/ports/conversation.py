"""Ports of the conversation domain: conversations and messages, their persistence, and retrieval. Calling
models is ports.models; metering their use is ports.metering."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable
from uuid import UUID

from src.ports.metering import Owner, UsageLedger
from src.ports.models import Passage
from src.ports.shared import UnitOfWork


class MessageRole(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"


class MessageStatus(StrEnum):
    STREAMING = "streaming"
    COMPLETE = "complete"
    CANCELLED = "cancelled"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Conversation:
    """Its owner's alone: a member's through their sessions, or an API key's (each key has its own)."""

    id: UUID
    workspace_id: UUID
    user_id: UUID
    title: str
    created_at: datetime
    updated_at: datetime
    api_key_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class Source:
    chunk_id: UUID
    document_id: UUID
    document_title: str
    score: float
    flagged: bool = False  # the chunk looks like it tries to give the model instructions


class Rating(StrEnum):
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class Message:
    id: UUID
    conversation_id: UUID
    role: MessageRole
    content: str
    status: MessageStatus
    created_at: datetime
    model: str | None = None
    template: str | None = None  # "name@version"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: int | None = None
    ttft_ms: int | None = None
    sources: tuple[Source, ...] = ()
    error: str | None = None
    completed_at: datetime | None = None
    progress_at: datetime | None = None  # while streaming: when its generator last stored its text
    rating: str | None = None  # an answer's owner's verdict: Rating.UP or DOWN
    rating_comment: str | None = None
    rated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What one checkpoint stored: each answer's stored length, and the answers asked to stop."""

    lengths: dict[UUID, int]
    stop: set[UUID]


@dataclass(frozen=True, slots=True)
class AnswerProgress:
    """The text an answer has produced since its last checkpoint."""

    message_id: UUID
    offset: int  # characters of it already stored
    text: str  # the characters after them
    model: str | None


@dataclass(frozen=True, slots=True)
class ConversationPage:
    conversations: list[Conversation]
    next_cursor: str | None


@runtime_checkable
class Retriever(Protocol):
    async def retrieve(self, workspace_id: UUID, query: str, k: int) -> list[Passage]: ...


@runtime_checkable
class ConversationRepository(Protocol):
    async def add(self, conversation: Conversation) -> None: ...

    async def add_turn(self, conversation: Conversation, *messages: Message, new: bool) -> None:
        """Adds `messages` (in their order) to `conversation`, which is created (`new`) or has its title and
        `updated_at` saved: one write."""
        ...

    async def get(self, conversation_id: UUID) -> Conversation | None: ...

    async def save(self, conversation: Conversation) -> None: ...

    async def delete(self, conversation_id: UUID) -> None: ...

    async def page(self, workspace_id: UUID, owner: Owner, limit: int,
                   after: tuple[datetime, UUID] | None) -> list[Conversation]: ...


@runtime_checkable
class MessageRepository(Protocol):
    async def get(self, message_id: UUID) -> Message | None: ...

    async def finish(self, message: Message) -> bool:
        """Stores the outcome of an answer that is still streaming; False, and nothing written, when it was
        finished already (an answer is finished once: by its process, or by the sweep of stalled ones)."""
        ...

    async def history(self, conversation_id: UUID, limit: int) -> list[Message]:
        """The newest `limit` messages, oldest first."""
        ...

    async def save_progress(self, progress: Sequence[AnswerProgress], now: datetime) -> Checkpoint:
        """One write for all: appends each answer's text where exactly `offset` characters are stored and it is
        still streaming, and sets its `progress_at` to `now`; returns the stored length of each answer found
        and those someone asked to stop."""
        ...

    async def rate(self, message_id: UUID, rating: Rating, comment: str | None, now: datetime) -> None: ...

    async def request_stop(self, message_id: UUID, now: datetime) -> bool:
        """Asks whichever process generates the answer to stop it (seen at its next checkpoint); False when
        it is no longer streaming."""
        ...

    async def stalled(self, before: datetime, limit: int) -> list[Message]:
        """Answers still streaming whose progress was last stored before `before` (or never, created before
        it), locked until the end of the transaction; ones another transaction holds are skipped."""
        ...


@dataclass(frozen=True, slots=True)
class RatedAnswer:
    """One row of the feedback export: a rated answer with the template version and model that made it."""

    message_id: UUID
    conversation_id: UUID
    template: str | None
    model: str | None
    rating: str
    comment: str | None
    rated_at: datetime


@dataclass(frozen=True, slots=True)
class DailyAnswers:
    day: date
    model: str
    template: str
    answers: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


@dataclass(frozen=True, slots=True)
class ModelLatency:
    model: str
    answers: int  # with a first token
    ttft_p50_ms: float
    ttft_p95_ms: float


@dataclass(frozen=True, slots=True)
class TemplateFeedback:
    template: str
    up: int
    down: int


@dataclass(frozen=True, slots=True)
class AnswerAnalytics:
    """A workspace's answers since a day: spend per day x model x template version, time to first token per
    model, ratings per template version."""

    days: tuple[DailyAnswers, ...]
    latency: tuple[ModelLatency, ...]
    feedback: tuple[TemplateFeedback, ...]


@runtime_checkable
class AnswerAnalyticsReads(Protocol):
    async def analytics(self, workspace_id: UUID, since: date) -> AnswerAnalytics: ...

    async def rated(self, workspace_id: UUID, template: str | None, since: date, limit: int) -> list[RatedAnswer]:
        """Newest first."""
        ...


class ConversationUnitOfWork(UnitOfWork, Protocol):
    conversations: ConversationRepository
    messages: MessageRepository
    usage: UsageLedger
    analytics: AnswerAnalyticsReads


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """Configuration the conversation core reads (built by the container from KEEL_CHAT_*); how the model
    calls themselves are made is CallSettings."""

    max_input_chars: int = 8000
    max_output_tokens: int = 1024
    history_messages: int = 20
    retrieval_k: int = 6
    checkpoint_seconds: float = 2.0  # how often a generating process stores its answers' text
    stalled_after_seconds: float = 60.0  # no progress stored for this long: the process generating it is gone
