"""Ports of the conversation domain: conversations and messages, the chat providers (LLMs) behind one
streaming interface, retrieval, prompt templates, token counting and the usage ledger behind budgets."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from src.ports.shared import DomainError, UnitOfWork


class ProviderError(DomainError):
    """A chat provider failed. `retryable`: 429, 5xx, timeouts, dropped connections; `retry_after` in
    seconds when the provider said how long to wait."""

    code = "provider_error"

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


class ProviderUnavailable(DomainError):
    """Every model of the fallback chain failed (or its circuit is open)."""

    code = "provider_unavailable"


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
class Owner:
    """Who a conversation belongs to: `api_key_id` None = the member themselves (through a session)."""

    user_id: UUID
    api_key_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class Source:
    chunk_id: UUID
    document_id: UUID
    document_title: str
    score: float
    flagged: bool = False  # the chunk looks like it tries to give the model instructions


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


@dataclass(frozen=True, slots=True)
class Passage:
    chunk_id: UUID
    document_id: UUID
    document_title: str
    text: str
    score: float


@runtime_checkable
class Retriever(Protocol):
    async def retrieve(self, workspace_id: UUID, query: str, k: int) -> list[Passage]: ...


# -- chat providers --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str  # "user" or "assistant"
    content: str


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str  # the provider's own model name
    system: str
    messages: tuple[ChatMessage, ...]
    max_tokens: int = 1024
    passages: tuple[Passage, ...] = ()  # what the offline provider answers from


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class Finished:
    usage: Usage | None  # None when the provider did not report it
    stop_reason: str | None = None


StreamEvent = TextDelta | Finished


@runtime_checkable
class ChatProvider(Protocol):
    name: str  # "openai", "anthropic", "offline"

    def stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        """Text deltas then one Finished. Raises ProviderError; closing the iterator closes the upstream
        request."""
        ...

    async def structured(self, request: ChatRequest, name: str,
                         schema: dict[str, Any]) -> tuple[dict[str, Any], Usage]:
        """A JSON object conforming to `schema`, through the provider's native structured output."""
        ...


@dataclass(frozen=True, slots=True)
class ModelRoute:
    model: str  # Keel's model id as plans name it: "claude-sonnet-4-6", "gpt-4o-mini", "offline"
    provider: ChatProvider
    provider_model: str
    context_tokens: int
    input_usd_per_mtok: float
    output_usd_per_mtok: float


@runtime_checkable
class ChatModels(Protocol):
    def route(self, model: str) -> ModelRoute | None:
        """None when the model's provider is not configured on this server."""
        ...


@runtime_checkable
class TokenCounter(Protocol):
    def count(self, model: str, text: str) -> int: ...


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    name: str
    version: int
    system: str  # placeholders: $context, $today
    user: str  # placeholders: $question

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@runtime_checkable
class PromptLibrary(Protocol):
    def get(self, name: str, version: int | None = None) -> PromptTemplate:
        """The template; None = its newest version. Raises NotFound."""
        ...


# -- budgets ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class UsageTotals:
    tokens: int  # settled actual tokens + open reservations
    cost_usd: float
    requests: int


@dataclass(frozen=True, slots=True)
class Reservation:
    id: UUID
    workspace_id: UUID
    user_id: UUID | None  # None: spent for the workspace, not a member (e.g. graph extraction of an API upload)
    message_id: UUID
    model: str
    day: date
    reserved_tokens: int
    created_at: datetime
    api_key_id: UUID | None = None  # spent through this API key (it has a day's total of its own)


@dataclass(frozen=True, slots=True)
class DayTotals:
    """The day's totals, just before a reservation, of its workspace, its member and its API key."""

    workspace: UsageTotals
    member: UsageTotals
    api_key: UsageTotals


@dataclass(frozen=True, slots=True)
class UsageRow:
    day: date
    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


@runtime_checkable
class UsageLedger(Protocol):
    async def reserve(self, reservation: Reservation) -> DayTotals:
        """Records the reservation; returns the day's totals of its workspace, user and API key as they were
        just before it. From here to the end of the transaction the workspace's other reservations wait, so
        none slips in between a budget decision and its commit (or rollback)."""
        ...

    async def settle(self, reservation_id: UUID, model: str, usage: Usage, cost_usd: float, now: datetime) -> None:
        """Replaces the reservation by the actual usage (once; settling again changes nothing)."""
        ...

    async def unsettled(self, message_id: UUID) -> Reservation | None:
        """The reservation made for a message, while it is not settled."""
        ...

    async def report(self, workspace_id: UUID, since: date, owner: Owner | None = None) -> list[UsageRow]:
        """The workspace's usage per day and model; `owner`: only what that member (or API key) spent."""
        ...


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

    async def request_stop(self, message_id: UUID, now: datetime) -> bool:
        """Asks whichever process generates the answer to stop it (seen at its next checkpoint); False when
        it is no longer streaming."""
        ...

    async def stalled(self, before: datetime, limit: int) -> list[Message]:
        """Answers still streaming whose progress was last stored before `before` (or never, created before
        it), locked until the end of the transaction; ones another transaction holds are skipped."""
        ...


class ConversationUnitOfWork(UnitOfWork, Protocol):
    conversations: ConversationRepository
    messages: MessageRepository
    usage: UsageLedger


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """Configuration the core reads (built by the container from KEEL_CHAT_*)."""

    models: tuple[str, ...] = ("claude-sonnet-4-6", "gpt-4o", "gpt-4o-mini", "offline")  # fallback order
    max_input_chars: int = 8000
    max_output_tokens: int = 1024
    history_messages: int = 20
    retrieval_k: int = 6
    max_attempts: int = 3
    retry_base_seconds: float = 0.5
    retry_max_seconds: float = 20.0
    breaker_failures: int = 5
    breaker_cooldown_seconds: float = 30.0
    first_token_timeout_seconds: float = 60.0
    user_daily_tokens: int = 0  # 0 = only the workspace's plan caps apply
    resume_grace_seconds: float = 0.0
    checkpoint_seconds: float = 2.0  # how often a generating process stores its answers' text
    stalled_after_seconds: float = 60.0  # no progress stored for this long: the process generating it is gone
