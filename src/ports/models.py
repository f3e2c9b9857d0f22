"""Ports for calling language models, shared by every domain that does (answers, titles, graph extraction):
the providers behind one streaming and structured-output interface, their routes and prices, prompt
templates, token counting, and how calls are retried, broken and chained."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from src.ports.shared import DomainError


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


@dataclass(frozen=True, slots=True)
class Passage:
    chunk_id: UUID
    document_id: UUID
    document_title: str
    text: str
    score: float


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


@dataclass(frozen=True, slots=True)
class CallSettings:
    """How model calls are made (built by the container from KEEL_CHAT_*)."""

    models: tuple[str, ...] = ("claude-sonnet-4-6", "gpt-4o", "gpt-4o-mini", "offline")  # fallback order
    max_attempts: int = 3
    retry_base_seconds: float = 0.5
    retry_max_seconds: float = 20.0
    breaker_failures: int = 5
    breaker_cooldown_seconds: float = 30.0
    first_token_timeout_seconds: float = 60.0
    user_daily_tokens: int = 0  # 0 = only the workspace's plan caps apply
