"""Entitlements: derived from the newest known subscription states, stored locally, read by everyone.

A workspace's plan is that of its best live subscription (active, trialing, or past due within the grace
period); without one it is the free plan. A failed payment starts a grace period: the plan holds until
`grace_until`, after which readers see the free plan even before anything rewrites the row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from src.core.billing.plans import Catalogue
from src.ports.billing import (
    BillingUnitOfWork,
    Entitlement,
    EntitlementChange,
    EntitlementStatus,
    Subscription,
    SubscriptionStatus,
)
from src.ports.shared import Clock

LIVE = {SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING, SubscriptionStatus.PAST_DUE}


@dataclass(frozen=True, slots=True)
class BillingConfig:
    grace_period: timedelta = timedelta(days=7)


def plan_name_of(subscription: Subscription, catalogue: Catalogue) -> str | None:
    plan = catalogue.by_price(subscription.price_id) or (
        catalogue.get(subscription.plan_hint) if subscription.plan_hint else None)
    return plan.name if plan else None


def snapshot(entitlement: Entitlement | None) -> dict[str, Any] | None:
    """What history and repairs record: the parts that decide access."""
    if entitlement is None:
        return None
    return {"plan": entitlement.plan, "status": entitlement.status.value,
            "grace_until": entitlement.grace_until.isoformat() if entitlement.grace_until else None,
            "subscription_id": entitlement.subscription_id, "limits": entitlement.limits.as_dict()}


def derive(workspace_id: UUID, subscriptions: list[Subscription], catalogue: Catalogue,
           current: Entitlement | None, now: datetime, *, payment_failed: bool | None = None,
           grace_period: timedelta) -> Entitlement:
    """The entitlement the subscriptions imply. A grace period runs while the best subscription is past
    due, or from a failed payment (`payment_failed` True) until a paid one (False); it keeps the end date
    it started with."""
    named = [(plan_name_of(sub, catalogue), sub) for sub in subscriptions if sub.status in LIVE]
    live = [(name, sub) for name, sub in named if name is not None]
    if not live:
        plan = catalogue.free
        return Entitlement(workspace_id, plan.name, plan.limits, EntitlementStatus.ACTIVE, None, None, now)
    name, best = max(live, key=lambda item: (catalogue.rank(item[0]), item[1].as_of))
    in_grace = current is not None and current.status is EntitlementStatus.GRACE
    # Without invoice news, Stripe's own status decides: past due is failing, active or trialing is not.
    failing = best.status is SubscriptionStatus.PAST_DUE if payment_failed is None else payment_failed
    grace_until = None
    if failing:
        grace_until = current.grace_until if current and in_grace and current.grace_until else now + grace_period
    plan = catalogue.get(name) or catalogue.free  # a named plan is in the catalogue: plan_name_of found it
    status = EntitlementStatus.GRACE if failing else EntitlementStatus.ACTIVE
    return Entitlement(workspace_id, name, plan.limits, status, grace_until, best.id, now)


def same_terms(left: Entitlement | None, right: Entitlement) -> bool:
    return left is not None and snapshot(replace(left, updated_at=right.updated_at)) == snapshot(right)


async def settle(uow: BillingUnitOfWork, workspace_id: UUID, catalogue: Catalogue, now: datetime, cause: str,
                 grace_period: timedelta, *, payment_failed: bool | None = None) -> EntitlementChange | None:
    """Rewrites the workspace's entitlement from its subscriptions, inside the caller's transaction;
    returns the change (None when nothing changed)."""
    await uow.billing.lock_workspace(workspace_id)
    current = await uow.billing.entitlement(workspace_id, for_update=True)
    subscriptions = await uow.billing.subscriptions_of(workspace_id)
    wanted = derive(workspace_id, subscriptions, catalogue, current, now, payment_failed=payment_failed,
                    grace_period=grace_period)
    if same_terms(current, wanted):
        return None
    change = EntitlementChange(workspace_id, snapshot(current), snapshot(wanted) or {}, cause, now)
    await uow.billing.save_entitlement(wanted, change)
    return change


def effective(entitlement: Entitlement | None, workspace_id: UUID, catalogue: Catalogue, now: datetime) -> Entitlement:
    """What a reader gets: the stored entitlement, or free when there is none or its grace ran out."""
    free = catalogue.free
    if entitlement is None:
        return Entitlement(workspace_id, free.name, free.limits, EntitlementStatus.ACTIVE, None, None, now)
    if entitlement.status is EntitlementStatus.GRACE and entitlement.grace_until and entitlement.grace_until <= now:
        return replace(entitlement, plan=free.name, limits=free.limits, status=EntitlementStatus.ACTIVE,
                       grace_until=None)
    return entitlement


class CheckEntitlement:
    """- The EntitlementChecker other modules use: reads the local table only, never Stripe."""

    def __init__(self, uow: Callable[[], BillingUnitOfWork], catalogue: Catalogue, clock: Clock) -> None:
        self._uow = uow
        self._catalogue = catalogue
        self._clock = clock

    async def entitlement(self, workspace_id: UUID) -> Entitlement:
        async with self._uow() as uow:
            stored = await uow.billing.entitlement(workspace_id)
        return effective(stored, workspace_id, self._catalogue, self._clock.now())
