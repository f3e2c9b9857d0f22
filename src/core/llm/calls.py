"""ModelCalls: the one way any domain calls a language model. Every call is routed along a fallback chain
(the plan's models, by the providers this server has), retried with backoff on what is worth retrying,
kept off models whose circuit is open, reserved on the budget before and settled on the actual usage after,
and costed by the model's prices. Answers stream through it; titles and graph extraction ask it for
structured output. Every call, retry, fallback, refusal and settled usage is reported to Telemetry here."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from src.core.llm.budget import BudgetDecision, cost_usd, reserve
from src.core.llm.resilience import (
    Attempt,
    Breakers,
    call_attributes,
    error_code,
    failed_attempt,
    record_usage,
    stream_with_fallback,
)
from src.ports.billing import Entitlement, QuotaExceeded
from src.ports.metering import MeteredUnitOfWork, Spender
from src.ports.models import (
    CallSettings,
    ChatModels,
    ChatRequest,
    ModelRoute,
    ProviderError,
    ProviderUnavailable,
    StreamEvent,
    TextDelta,
    Usage,
)
from src.ports.shared import Clock
from src.ports.telemetry import Telemetry

log = logging.getLogger(__name__)
NO_USAGE = Usage(0, 0)


@dataclass(frozen=True, slots=True)
class Structured:
    """A structured answer (None: no model gave one that fits) and what the calls cost; `route`: the model
    that answered last (None: none did)."""

    data: dict[str, Any] | None
    route: ModelRoute | None
    usage: Usage
    cost_usd: float
    attempts: tuple[Attempt, ...] = ()


class ModelCalls:
    def __init__(self, models: ChatModels, breakers: Breakers, settings: CallSettings, clock: Clock,
                 telemetry: Telemetry) -> None:
        self._models = models
        self._breakers = breakers
        self._settings = settings
        self._clock = clock
        self._telemetry = telemetry

    def routes(self, chain: tuple[str, ...]) -> list[ModelRoute]:
        """The chain's models this server can reach (a provider without a key is left out)."""
        return [route for model in chain if (route := self._models.route(model)) is not None]

    async def reserve(self, uow: MeteredUnitOfWork, entitlement: Entitlement, spender: Spender, subject_id: UUID,
                      estimate: int) -> BudgetDecision:
        """Inside the caller's transaction (QuotaExceeded past a cap): the chain the budget allows."""
        try:
            decision = await reserve(uow, entitlement, self._settings, spender, subject_id, estimate,
                                     self._clock.now())
        except QuotaExceeded as exc:
            self._telemetry.budget_refused(exc.limit)
            raise
        if decision.soft_capped:
            self._telemetry.budget_soft_capped()
        return decision

    async def stream(self, decision: BudgetDecision, request_for: Callable[[ModelRoute], ChatRequest],
                     attempts: list[Attempt], template: str) -> AsyncIterator[tuple[ModelRoute, StreamEvent]]:
        """Streams from the first model of the budget's chain that answers (see stream_with_fallback),
        measured: the answering request's time to its first token and to its end, its outcome, a fallback
        taken (each failed attempt before it is reported by stream_with_fallback)."""
        chain = self.routes(decision.models)
        started, first_token, route, outcome = time.monotonic(), None, None, "error"
        try:
            async for route, event in stream_with_fallback(chain, request_for, self._breakers, self._settings,
                                                           attempts, template, self._telemetry):
                if first_token is None and isinstance(event, TextDelta) and event.text:
                    first_token = time.monotonic() - started  # retries and fallbacks included: what users wait
                    if route.model != chain[0].model:
                        self._telemetry.model_fallback(template, chain[0].model, route.model)
                yield route, event
            outcome = "ok"
        except (asyncio.CancelledError, GeneratorExit):
            outcome = "cancelled"
            raise
        except ProviderError as exc:  # after the first token: the request failed mid-stream
            if route is not None:
                self._telemetry.model_error(route.provider.name, route.model, template, error_code(exc))
            raise
        finally:
            if route is not None:
                self._telemetry.model_call(route.provider.name, route.model, template, outcome,
                                           time.monotonic() - started, first_token)

    def cost(self, route: ModelRoute | None, usage: Usage) -> float:
        return cost_usd(usage, route.input_usd_per_mtok, route.output_usd_per_mtok) if route else 0.0

    async def settle(self, uow: MeteredUnitOfWork, decision: BudgetDecision, route: ModelRoute | None,
                     usage: Usage, template: str, cost: float | None = None) -> float:
        """Inside the caller's transaction: the reservation becomes the actual usage, once; returns its cost
        (by `route`'s prices unless given)."""
        cost = self.cost(route, usage) if cost is None else cost
        await uow.usage.settle(decision.reservation.id, route.model if route else "", usage, cost,
                               self._clock.now())
        if route is not None:
            self._telemetry.model_usage(route.provider.name, route.model, template, usage, cost)
        return cost

    async def structured(self, routes: list[ModelRoute], request_for: Callable[[ModelRoute], ChatRequest],
                         name: str, schema: dict[str, Any],
                         accept: Callable[[dict[str, Any]], bool] = lambda data: True) -> Structured:
        """A JSON object against `schema` from the first model of `routes` that gives one `accept` takes
        (native structured output), with the same retries and breakers as answers; no budget is touched here
        (the caller reserves and settles: one reservation may cover many calls)."""
        attempts: list[Attempt] = []
        spent, cost, answered = NO_USAGE, 0.0, None
        for route in routes:
            if not self._breakers.of(route.model).allows():
                attempts.append(Attempt(route.model, "circuit open"))
                continue
            for attempt in range(1, self._settings.max_attempts + 1):
                started, request = time.monotonic(), request_for(route)
                span = self._telemetry.start_span(f"chat {route.provider_model}", call_attributes(route, name, request))
                try:
                    async with asyncio.timeout(self._settings.first_token_timeout_seconds):
                        data, usage = await route.provider.structured(request, name, schema)
                except (ProviderError, TimeoutError) as exc:
                    span.fail(error_code(exc))
                    span.end()
                    if await failed_attempt(route, exc, attempt, started, name, self._settings, self._breakers,
                                            self._telemetry, attempts):
                        continue
                    break
                record_usage(span, usage)
                span.end()
                self._breakers.succeeded(route.model)  # an answer that does not fit is paid for all the same
                self._telemetry.model_call(route.provider.name, route.model, name, "ok", time.monotonic() - started,
                                           None)
                if route is not routes[0] and answered is None:
                    self._telemetry.model_fallback(name, routes[0].model, route.model)
                answered, cost = route, cost + self.cost(route, usage)
                spent = Usage(spent.prompt_tokens + usage.prompt_tokens,
                              spent.completion_tokens + usage.completion_tokens)
                if accept(data):
                    return Structured(data, route, spent, cost, tuple(attempts))
                attempts.append(Attempt(route.model, "an answer that does not fit"))
                break
        return Structured(None, answered, spent, cost, tuple(attempts))

    @staticmethod
    def unavailable(result: Structured) -> ProviderUnavailable:
        return ProviderUnavailable("no model could answer: " + "; ".join(f"{a.model}: {a.error}"
                                                                        for a in result.attempts))
