"""Calling chat models without falling over: retries with exponential backoff and jitter that honour
Retry-After, only on retryable errors and only before the first token; a circuit breaker per model; and
the fallback chain, tried in order."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from src.ports.models import (
    CallSettings,
    ChatRequest,
    Finished,
    ModelRoute,
    ProviderError,
    ProviderUnavailable,
    StreamEvent,
    Usage,
)
from src.ports.telemetry import Span, Telemetry


def backoff_seconds(attempt: int, retry_after: float | None, base: float, ceiling: float) -> float:
    """Retry-After when the provider sent one (capped), else exponential with full jitter."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), ceiling)
    return random.uniform(0, min(ceiling, base * 2 ** (attempt - 1)))


@dataclass
class CircuitBreaker:
    """Opens after `failures` consecutive failures; after `cooldown` one probe call is let through
    (half-open): success closes it, failure opens it again."""

    failures: int
    cooldown: float
    clock: Callable[[], float] = time.monotonic
    consecutive: int = 0
    opened_at: float | None = None
    probing: bool = False

    def allows(self) -> bool:
        if self.opened_at is None:
            return True
        if self.probing or self.clock() - self.opened_at < self.cooldown:
            return False
        self.probing = True
        return True

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None

    def succeeded(self) -> None:
        self.consecutive, self.opened_at, self.probing = 0, None, False

    def failed(self) -> None:
        self.consecutive += 1
        if self.probing or self.consecutive >= self.failures:
            self.opened_at, self.probing = self.clock(), False


class Breakers:
    def __init__(self, settings: CallSettings, telemetry: Telemetry) -> None:
        self._settings = settings
        self._telemetry = telemetry
        self._by_model: dict[str, CircuitBreaker] = {}

    def succeeded(self, model: str) -> None:
        self.of(model).succeeded()
        self._telemetry.circuit(model, False)

    def failed(self, model: str) -> None:
        breaker = self.of(model)
        breaker.failed()
        self._telemetry.circuit(model, breaker.is_open)

    def of(self, model: str) -> CircuitBreaker:
        if model not in self._by_model:
            self._by_model[model] = CircuitBreaker(self._settings.breaker_failures,
                                                   self._settings.breaker_cooldown_seconds)
        return self._by_model[model]


@dataclass(frozen=True, slots=True)
class Attempt:
    model: str
    error: str


def call_attributes(route: ModelRoute, template: str, request: ChatRequest) -> dict[str, str | int]:
    """A model call's span attributes, by the OpenTelemetry GenAI conventions (no prompt text)."""
    return {"gen_ai.operation.name": "chat", "gen_ai.provider.name": route.provider.name,
            "gen_ai.request.model": route.provider_model, "gen_ai.request.max_tokens": request.max_tokens,
            "keel.model": route.model, "keel.template": template}


def record_usage(span: Span, usage: Usage | None) -> None:
    if usage is not None:
        span.set("gen_ai.usage.input_tokens", usage.prompt_tokens)
        span.set("gen_ai.usage.output_tokens", usage.completion_tokens)


def error_code(error: ProviderError | TimeoutError | StopAsyncIteration) -> str:
    """A bounded label for a failed attempt: the provider's HTTP status, or what went wrong without one."""
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, StopAsyncIteration):
        return "empty"
    return str(error.status) if error.status else "connection" if error.retryable else "error"


async def failed_attempt(route: ModelRoute, exc: ProviderError | TimeoutError | StopAsyncIteration, attempt: int,
                         started: float, template: str, settings: CallSettings, breakers: Breakers,
                         telemetry: Telemetry, attempts: list[Attempt]) -> bool:
    """Records a failed attempt (started at `started`, monotonic); True when it is worth another one (after
    the backoff, slept here), False when the model is given up (its breaker told)."""
    error = exc if isinstance(exc, ProviderError) else ProviderError(
        "no answer in time" if isinstance(exc, TimeoutError) else "empty stream", retryable=True)
    attempts.append(Attempt(route.model, str(error)))
    telemetry.model_call(route.provider.name, route.model, template, "error", time.monotonic() - started, None)
    telemetry.model_error(route.provider.name, route.model, template, error_code(exc))
    if error.retryable and attempt < settings.max_attempts:
        telemetry.model_retry(route.provider.name, route.model, template)
        await asyncio.sleep(backoff_seconds(attempt, error.retry_after, settings.retry_base_seconds,
                                            settings.retry_max_seconds))
        return True
    breakers.failed(route.model)
    return False


async def stream_with_fallback(chain: list[ModelRoute], request_for: Callable[[ModelRoute], ChatRequest],
                               breakers: Breakers, settings: CallSettings, attempts: list[Attempt],
                               template: str, telemetry: Telemetry) -> AsyncIterator[tuple[ModelRoute, StreamEvent]]:
    """Streams from the first model of `chain` that produces a first event. Failures before it are retried
    (retryable ones) or passed to the next model; failures after it propagate: tokens already reached the
    client, so a retry would repeat them. `attempts` collects what failed, for the record."""
    for route in chain:
        breaker = breakers.of(route.model)
        if not breaker.allows():
            attempts.append(Attempt(route.model, "circuit open"))
            continue
        for attempt in range(1, settings.max_attempts + 1):
            started = time.monotonic()
            request = request_for(route)
            span = telemetry.start_span(f"chat {route.provider_model}", call_attributes(route, template, request))
            stream = route.provider.stream(request)
            try:
                async with asyncio.timeout(settings.first_token_timeout_seconds):
                    first = await anext(stream)
            except (ProviderError, TimeoutError, StopAsyncIteration) as exc:
                await stream.aclose()
                span.fail(error_code(exc))
                span.end()
                if await failed_attempt(route, exc, attempt, started, template, settings, breakers, telemetry,
                                        attempts):
                    continue
                break
            breakers.succeeded(route.model)
            try:
                yield route, first
                async for event in stream:
                    if isinstance(event, Finished):
                        record_usage(span, event.usage)
                    yield route, event
            except ProviderError as exc:
                span.fail(error_code(exc))
                raise
            finally:
                await stream.aclose()
                span.end()
            return
    raise ProviderUnavailable("no model could answer: " + "; ".join(f"{a.model}: {a.error}" for a in attempts))
