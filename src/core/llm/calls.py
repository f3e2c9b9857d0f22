"""ModelCalls: the one way any domain calls a language model. Every call is routed along a fallback chain
(the plan's models, by the providers this server has), retried with backoff on what is worth retrying,
kept off models whose circuit is open, reserved on the budget before and settled on the actual usage after,
and costed by the model's prices. Answers stream through it; titles and graph extraction ask it for
structured output."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from src.core.llm.budget import BudgetDecision, cost_usd, reserve
from src.core.llm.resilience import Attempt, Breakers, backoff_seconds, stream_with_fallback
from src.ports.billing import Entitlement
from src.ports.metering import MeteredUnitOfWork, Spender
from src.ports.models import (
    CallSettings,
    ChatModels,
    ChatRequest,
    ModelRoute,
    ProviderError,
    ProviderUnavailable,
    StreamEvent,
    Usage,
)
from src.ports.shared import Clock

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
    def __init__(self, models: ChatModels, breakers: Breakers, settings: CallSettings, clock: Clock) -> None:
        self._models = models
        self._breakers = breakers
        self._settings = settings
        self._clock = clock

    def routes(self, chain: tuple[str, ...]) -> list[ModelRoute]:
        """The chain's models this server can reach (a provider without a key is left out)."""
        return [route for model in chain if (route := self._models.route(model)) is not None]

    async def reserve(self, uow: MeteredUnitOfWork, entitlement: Entitlement, spender: Spender, subject_id: UUID,
                      estimate: int) -> BudgetDecision:
        """Inside the caller's transaction (QuotaExceeded past a cap): the chain the budget allows."""
        return await reserve(uow, entitlement, self._settings, spender, subject_id, estimate, self._clock.now())

    def stream(self, decision: BudgetDecision, request_for: Callable[[ModelRoute], ChatRequest],
               attempts: list[Attempt]) -> AsyncIterator[tuple[ModelRoute, StreamEvent]]:
        """Streams from the first model of the budget's chain that answers (see stream_with_fallback)."""
        return stream_with_fallback(self.routes(decision.models), request_for, self._breakers, self._settings,
                                    attempts)

    def cost(self, route: ModelRoute | None, usage: Usage) -> float:
        return cost_usd(usage, route.input_usd_per_mtok, route.output_usd_per_mtok) if route else 0.0

    async def settle(self, uow: MeteredUnitOfWork, decision: BudgetDecision, route: ModelRoute | None,
                     usage: Usage, cost: float | None = None) -> float:
        """Inside the caller's transaction: the reservation becomes the actual usage, once; returns its cost
        (by `route`'s prices unless given)."""
        cost = self.cost(route, usage) if cost is None else cost
        await uow.usage.settle(decision.reservation.id, route.model if route else "", usage, cost,
                               self._clock.now())
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
            breaker = self._breakers.of(route.model)
            if not breaker.allows():
                attempts.append(Attempt(route.model, "circuit open"))
                continue
            for attempt in range(1, self._settings.max_attempts + 1):
                try:
                    async with asyncio.timeout(self._settings.first_token_timeout_seconds):
                        data, usage = await route.provider.structured(request_for(route), name, schema)
                except (ProviderError, TimeoutError) as exc:
                    error = exc if isinstance(exc, ProviderError) else ProviderError("no answer in time",
                                                                                     retryable=True)
                    attempts.append(Attempt(route.model, str(error)))
                    if error.retryable and attempt < self._settings.max_attempts:
                        await asyncio.sleep(backoff_seconds(attempt, error.retry_after,
                                                            self._settings.retry_base_seconds,
                                                            self._settings.retry_max_seconds))
                        continue
                    breaker.failed()
                    break
                breaker.succeeded()  # an answer that does not fit is paid for all the same
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
