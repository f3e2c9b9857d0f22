"""Budgets: the estimated cost is reserved before a model is called and settled on the actual usage after;
one workspace's reservations are made one after the other, so concurrent requests at the edge of a cap
cannot overspend it. Past the plan's soft cap requests go to its cheaper model; past the hard cap they are
refused."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from src.ports.billing import Entitlement, QuotaExceeded
from src.ports.identity import Principal
from src.ports.metering import MeteredUnitOfWork, Reservation, Spender
from src.ports.models import CallSettings, Usage

OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class BudgetDecision:
    reservation: Reservation
    models: tuple[str, ...]  # the fallback chain allowed for this request
    soft_capped: bool


def cost_usd(usage: Usage, input_per_mtok: float, output_per_mtok: float) -> float:
    return (usage.prompt_tokens * input_per_mtok + usage.completion_tokens * output_per_mtok) / 1_000_000


def model_chain(entitlement: Entitlement, settings: CallSettings, soft_capped: bool) -> tuple[str, ...]:
    limits = entitlement.limits
    allowed = [model for model in settings.models if model in limits.models]
    chain = [limits.cheaper_model] if soft_capped else allowed
    if OFFLINE not in chain:
        chain.append(OFFLINE)  # answers from the passages when no model can: costs nothing
    return tuple(dict.fromkeys(chain))


def spender_of(caller: Principal, channel: str = "graphql") -> Spender:
    return Spender(caller.user_id, caller.api_key_id, caller.key_daily_tokens, channel)


async def reserve(uow: MeteredUnitOfWork, entitlement: Entitlement, settings: CallSettings,
                  spender: Spender, subject_id: UUID, estimate: int, now: datetime) -> BudgetDecision:
    """Inside the caller's transaction, which must be rolled back if this raises: checks the caps (the
    workspace's plan, the member's, the API key's own) and records the reservation for `subject_id` (the
    answer, the conversation titled, the document extracted)."""
    workspace_id, limits, today = entitlement.workspace_id, entitlement.limits, now.date()
    reservation = Reservation(uuid.uuid4(), workspace_id, spender.user_id, subject_id, "", today, estimate, now,
                              api_key_id=spender.api_key_id, channel=spender.channel)
    # recorded at once with the totals before it (one round trip, which serialises the workspace's
    # reservations until the transaction ends); a refusal below raises, and the caller's transaction, this
    # reservation included, is rolled back
    totals = await uow.usage.reserve(reservation)
    spent, mine, keys = totals.workspace.tokens, totals.member.tokens, totals.api_key.tokens
    if spent + estimate > limits.daily_tokens:
        raise QuotaExceeded(f"the workspace's plan allows {limits.daily_tokens} tokens a day and "
                            f"{spent} are used; try tomorrow or upgrade the plan", limit="daily_tokens")
    if settings.user_daily_tokens and mine + estimate > settings.user_daily_tokens:
        raise QuotaExceeded(f"you may use {settings.user_daily_tokens} tokens a day and {mine} are used",
                            limit="user_daily_tokens")
    if spender.key_daily_tokens is not None and keys + estimate > spender.key_daily_tokens:
        raise QuotaExceeded(f"this API key may use {spender.key_daily_tokens} tokens a day and {keys} are used",
                            limit="api_key_daily_tokens")
    soft_capped = spent + estimate > limits.soft_cap_tokens
    return BudgetDecision(reservation, model_chain(entitlement, settings, soft_capped), soft_capped)
