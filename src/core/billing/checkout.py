"""Checkout and the customer portal: Stripe-hosted pages, one Stripe customer per workspace."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from src.core.billing.plans import Catalogue
from src.ports.billing import BillingUnitOfWork, CheckoutRequest, Customer, PaymentProvider
from src.ports.identity import AccessPolicy, Permission, Principal
from src.ports.shared import Clock


async def ensure_customer(uow_factory: Callable[[], BillingUnitOfWork], provider: PaymentProvider,
                          workspace_id: UUID, now: datetime) -> Customer:
    """The workspace's Stripe customer, created once: Stripe's idempotency key makes racing creations
    return the same customer, and the table keeps the first one stored."""
    async with uow_factory() as uow:
        found = await uow.billing.customer(workspace_id)
    if found is not None:
        return found
    customer_id = await provider.create_customer(workspace_id, f"workspace {workspace_id}",
                                                 idempotency_key=f"keel-customer-{workspace_id}")
    async with uow_factory() as uow:
        await uow.billing.add_customer(Customer(workspace_id, customer_id, now))
        await uow.commit()
        stored = await uow.billing.customer(workspace_id)
    return stored or Customer(workspace_id, customer_id, now)


class StartCheckout:
    """- Returns the URL of a Stripe Checkout Session subscribing the workspace to `plan`.
    - The session carries the workspace id (client_reference_id and subscription metadata), so the
    webhooks that follow find the workspace without asking Stripe anything."""

    def __init__(self, uow: Callable[[], BillingUnitOfWork], provider: PaymentProvider, catalogue: Catalogue,
                 clock: Clock, return_url: str, access: AccessPolicy) -> None:
        self._uow = uow
        self._access = access
        self._provider = provider
        self._catalogue = catalogue
        self._clock = clock
        self._return_url = return_url.rstrip("/")

    async def execute(self, caller: Principal | None, workspace_id: UUID, plan_name: str) -> str:
        await self._access.require(caller, Permission.BILLING_MANAGE, workspace_id)
        plan = self._catalogue.purchasable(plan_name)
        assert plan.price_id is not None  # purchasable: it has one
        now = self._clock.now()
        customer = await ensure_customer(self._uow, self._provider, workspace_id, now)
        # One session per workspace, plan and minute: a double click gets the same page, not two.
        key = f"keel-checkout-{workspace_id}-{plan.name}-{now:%Y%m%d%H%M}"
        return await self._provider.create_checkout(CheckoutRequest(
            customer.customer_id, plan.price_id, workspace_id, plan.name,
            success_url=f"{self._return_url}?checkout=success", cancel_url=f"{self._return_url}?checkout=cancel",
            idempotency_key=key))


class OpenPortal:
    """- Returns the URL of a Stripe customer portal session for the workspace (created customer if none)."""

    def __init__(self, uow: Callable[[], BillingUnitOfWork], provider: PaymentProvider, clock: Clock,
                 return_url: str, access: AccessPolicy) -> None:
        self._uow = uow
        self._access = access
        self._provider = provider
        self._clock = clock
        self._return_url = return_url

    async def execute(self, caller: Principal | None, workspace_id: UUID) -> str:
        await self._access.require(caller, Permission.BILLING_MANAGE, workspace_id)
        customer = await ensure_customer(self._uow, self._provider, workspace_id, self._clock.now())
        return await self._provider.create_portal(customer.customer_id, self._return_url)
