"""Read-only billing views: a workspace's entitlement (for its members), and the operator's views of
subscriptions, entitlement history, webhook events and reconciliation repairs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from src.core.billing.entitlements import effective
from src.core.billing.plans import Catalogue
from src.ports.billing import (
    BillingUnitOfWork,
    Customer,
    Entitlement,
    EntitlementChange,
    EntitlementChecker,
    EventRecord,
    EventStatus,
    Repair,
    Subscription,
)
from src.ports.identity import AccessPolicy, Permission, Principal
from src.ports.shared import Clock, InvalidInput

MAX_ROWS = 200


def _check_first(first: int) -> int:
    if not 1 <= first <= MAX_ROWS:
        raise InvalidInput(f"first must be between 1 and {MAX_ROWS}", field="first")
    return first


@dataclass(frozen=True, slots=True)
class BillingOverview:
    workspace_id: UUID
    customer: Customer | None
    entitlement: Entitlement  # effective now
    subscriptions: list[Subscription]
    history: list[EntitlementChange]


class GetBillingOverview:
    def __init__(self, uow: Callable[[], BillingUnitOfWork], catalogue: Catalogue, clock: Clock,
                 access: AccessPolicy) -> None:
        self._uow = uow
        self._access = access
        self._catalogue = catalogue
        self._clock = clock

    async def execute(self, caller: Principal | None, workspace_id: UUID, history: int = 50) -> BillingOverview:
        await self._access.require(caller, Permission.BILLING_ADMIN)
        _check_first(history)
        async with self._uow() as uow:
            customer = await uow.billing.customer(workspace_id)
            stored = await uow.billing.entitlement(workspace_id)
            subscriptions = await uow.billing.subscriptions_of(workspace_id)
            changes = await uow.billing.history(workspace_id, history)
        return BillingOverview(workspace_id, customer, effective(stored, workspace_id, self._catalogue,
                                                                 self._clock.now()), subscriptions, changes)


class ListWebhookEvents:
    def __init__(self, uow: Callable[[], BillingUnitOfWork], access: AccessPolicy) -> None:
        self._uow = uow
        self._access = access

    async def execute(self, caller: Principal | None, status: EventStatus | None,
                      first: int = 50) -> list[EventRecord]:
        await self._access.require(caller, Permission.BILLING_ADMIN)
        async with self._uow() as uow:
            return await uow.stripe_events.recent(status, _check_first(first))


class ListRepairs:
    def __init__(self, uow: Callable[[], BillingUnitOfWork], access: AccessPolicy) -> None:
        self._uow = uow
        self._access = access

    async def execute(self, caller: Principal | None, first: int = 50) -> list[Repair]:
        await self._access.require(caller, Permission.BILLING_ADMIN)
        async with self._uow() as uow:
            return await uow.reconciliation.repairs(_check_first(first))


class ViewEntitlement:
    """- What the workspace's plan allows now, for anyone who can see the workspace."""

    def __init__(self, entitlements: EntitlementChecker, access: AccessPolicy) -> None:
        self._entitlements = entitlements
        self._access = access

    async def execute(self, caller: Principal | None, workspace_id: UUID) -> Entitlement:
        await self._access.require(caller, Permission.WORKSPACE_READ, workspace_id)
        return await self._entitlements.entitlement(workspace_id)
