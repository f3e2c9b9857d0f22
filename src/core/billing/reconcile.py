"""Reconciliation: Stripe's list of subscriptions is the truth; local state that drifted is repaired and
each repair recorded with before and after. One run at a time (advisory lock); a crashed run is simply
run again."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from uuid import UUID

from src.core.billing.entitlements import BillingConfig, settle
from src.core.billing.plans import Catalogue
from src.core.billing.webhooks import record_state
from src.ports.billing import BillingUnitOfWork, PaymentProvider, Repair, Subscription, SubscriptionStatus
from src.ports.identity import AccessPolicy, Permission, Principal
from src.ports.shared import Clock, Job, UnitOfWork

RECONCILE_JOB = "billing.reconcile"


@dataclass(frozen=True, slots=True)
class ReconciliationReport:
    run_id: UUID
    ran: bool  # False: another run held the lock
    subscriptions_seen: int = 0
    repaired: int = 0


def _differs(known: Subscription | None, remote: Subscription) -> bool:
    if known is None:
        return True
    fields = ("status", "price_id", "current_period_end", "cancel_at_period_end", "customer_id")
    return any(getattr(known, name) != getattr(remote, name) for name in fields)


class Reconcile:
    def __init__(self, uow: Callable[[], BillingUnitOfWork], provider: PaymentProvider, catalogue: Catalogue,
                 clock: Clock, config: BillingConfig) -> None:
        self._uow = uow
        self._provider = provider
        self._catalogue = catalogue
        self._clock = clock
        self._config = config

    async def execute(self) -> ReconciliationReport:
        run_id = uuid.uuid4()
        async with self._uow() as lock:
            if not await lock.reconciliation.try_lock():
                return ReconciliationReport(run_id, ran=False)
            as_of = int(self._clock.now().timestamp())  # what Stripe says now outranks older events
            seen: set[str] = set()
            cursor = None
            while True:
                page = await self._provider.subscriptions(cursor)  # no transaction open while Stripe answers
                async with self._uow() as uow:
                    for remote in page.subscriptions:
                        seen.add(remote.id)
                        known = await uow.billing.subscription(remote.id)
                        if _differs(known, remote):
                            await record_state(uow, replace(remote, as_of=max(as_of, known.as_of if known else 0)),
                                               trusted=True)
                    await uow.commit()
                cursor = page.next_cursor
                if cursor is None:
                    break
            repaired = await self._repair(run_id, seen, as_of)
        return ReconciliationReport(run_id, ran=True, subscriptions_seen=len(seen), repaired=repaired)

    async def _repair(self, run_id: UUID, seen: set[str], as_of: int) -> int:
        repaired = 0
        async with self._uow() as uow:
            workspace_ids = await uow.billing.workspaces_with_billing()
        for workspace_id in workspace_ids:
            now = self._clock.now()
            async with self._uow() as uow:
                for subscription in await uow.billing.subscriptions_of(workspace_id):
                    if subscription.id not in seen and subscription.status is not SubscriptionStatus.CANCELED:
                        # Stripe no longer lists it at all: it is gone.
                        await record_state(uow, replace(subscription, status=SubscriptionStatus.CANCELED,
                                                        as_of=max(as_of, subscription.as_of)))
                change = await settle(uow, workspace_id, self._catalogue, now, f"reconciliation:{run_id}",
                                      self._config.grace_period)
                if change is not None:
                    await uow.reconciliation.add_repair(Repair(run_id, workspace_id, change.before, change.after, now))
                    repaired += 1
                await uow.commit()
        return repaired


class RequestReconciliation:
    """- Queues a reconciliation run now (the nightly one runs anyway); runs never overlap."""

    def __init__(self, uow: Callable[[], UnitOfWork], access: AccessPolicy) -> None:
        self._uow = uow
        self._access = access

    async def execute(self, caller: Principal | None) -> None:
        await self._access.require(caller, Permission.BILLING_ADMIN)
        async with self._uow() as uow:
            uow.defer(Job(RECONCILE_JOB))
            await uow.commit()
