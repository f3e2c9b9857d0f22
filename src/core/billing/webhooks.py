"""Stripe events, applied once each and in the order of Stripe's own clock, not of arrival.

The event id is claimed and its effect written in one transaction: a duplicate delivery finds it done and
changes nothing; a delivery that fails leaves nothing behind but a failure note, and the next one applies it.
Applied either inline, before Stripe gets its answer, or by a worker after Keel stored the event and
answered (AcceptStripeEvent, then ApplyReceivedStripeEvents): the same effects, one statement per delivery.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID

from src.core.billing.entitlements import BillingConfig, settle
from src.core.billing.plans import Catalogue
from src.ports.billing import (
    BillingUnitOfWork,
    Customer,
    EventStatus,
    StripeEvent,
    Subscription,
    SubscriptionStatus,
    stripe_id,
    uuid_or_none,
)
from src.ports.shared import Clock

APPLY_JOB = "billing.apply_stripe_events"
MAX_ATTEMPTS = 5  # then the event stays failed (listed to admins); the nightly reconciliation repairs its effect
log = logging.getLogger(__name__)
SUBSCRIPTION_EVENTS = {"customer.subscription.created", "customer.subscription.updated",
                       "customer.subscription.deleted"}


def invoice_subscription_id(invoice: dict[str, Any]) -> str | None:
    """Older API versions put it on the invoice; newer ones under parent.subscription_details."""
    direct = stripe_id(invoice.get("subscription"))
    if direct:
        return direct
    details = ((invoice.get("parent") or {}).get("subscription_details") or {})
    return stripe_id(details.get("subscription"))


async def record_state(uow: BillingUnitOfWork, incoming: Subscription, *, trusted: bool = False
                       ) -> Subscription | None:
    """Stores `incoming` unless Keel already knows a newer state (by Stripe time) or the subscription ended
    (canceled is final); `trusted` (Stripe's current list) overrides both. Returns the state to act on, or
    None when `incoming` is stale."""
    known = await uow.billing.subscription(incoming.id, for_update=True)
    if known is not None:
        stale = known.status is SubscriptionStatus.CANCELED or known.as_of > incoming.as_of
        if stale and not trusted:
            return None
        if incoming.workspace_id is None:
            incoming = replace(incoming, workspace_id=known.workspace_id)
    if incoming.workspace_id is None:
        customer = await uow.billing.customer_by_stripe_id(incoming.customer_id)
        incoming = replace(incoming, workspace_id=customer.workspace_id if customer else None)
    await uow.billing.save_subscription(incoming)
    return incoming


class HandleStripeEvent:
    """- Applies a verified Stripe event once: "processed", "ignored" (a type Keel does not use) or
    "duplicate". Errors propagate (the endpoint answers 5xx so Stripe retries) after the failure is noted."""

    def __init__(self, uow: Callable[[], BillingUnitOfWork], catalogue: Catalogue, clock: Clock,
                 config: BillingConfig) -> None:
        self._uow = uow
        self._catalogue = catalogue
        self._clock = clock
        self._config = config

    async def execute(self, event: StripeEvent) -> str:
        now = self._clock.now()
        try:
            async with self._uow() as uow:
                if await uow.stripe_events.claim(event, now) is None:
                    return "duplicate"
                status = await self.apply(uow, event, now)
                await uow.commit()
                return status.value
        except Exception as exc:
            async with self._uow() as uow:
                await note_failure(uow, event, exc, now)
            raise

    async def apply(self, uow: BillingUnitOfWork, event: StripeEvent, now: datetime) -> EventStatus:
        """The event's effects and its final status, in `uow` (the caller holds the event's row and commits)."""
        status = EventStatus.PROCESSED if await self._apply(uow, event, now) else EventStatus.IGNORED
        await uow.stripe_events.finish(event.id, status, now)
        return status

    async def _apply(self, uow: BillingUnitOfWork, event: StripeEvent, now: datetime) -> bool:
        data, cause = event.data, f"event:{event.id}"
        if event.type in SUBSCRIPTION_EVENTS:
            incoming = Subscription.from_stripe(data, event.created)
            if event.type.endswith(".deleted"):
                incoming = replace(incoming, status=SubscriptionStatus.CANCELED)
            state = await record_state(uow, incoming)
            if state is not None and state.workspace_id is not None:
                await self._settle(uow, state.workspace_id, now, cause)
            return True
        if event.type == "checkout.session.completed":
            workspace_id = uuid_or_none(data.get("client_reference_id") or (data.get("metadata") or {}).get(
                "workspace_id"))
            customer_id = stripe_id(data.get("customer"))
            if workspace_id and customer_id:
                await uow.billing.add_customer(Customer(workspace_id, customer_id, now))
            return True
        if event.type in ("invoice.paid", "invoice.payment_failed"):
            return await self._invoice(uow, event, now, cause)
        if event.type == "customer.deleted":
            customer = await uow.billing.customer_by_stripe_id(data["id"])
            if customer is None:
                return True
            for subscription in await uow.billing.subscriptions_of(customer.workspace_id):
                if subscription.customer_id == data["id"]:
                    await record_state(uow, replace(subscription, status=SubscriptionStatus.CANCELED,
                                                    as_of=max(event.created, subscription.as_of)))
            await uow.billing.remove_customer(data["id"])
            await self._settle(uow, customer.workspace_id, now, cause)
            return True
        return False

    async def _invoice(self, uow: BillingUnitOfWork, event: StripeEvent, now: datetime, cause: str) -> bool:
        subscription_id = invoice_subscription_id(event.data)
        subscription = await uow.billing.subscription(subscription_id) if subscription_id else None
        if subscription is None or subscription.workspace_id is None:
            return True  # not a subscription Keel knows (yet): its subscription events will settle it
        failed = event.type == "invoice.payment_failed"
        if failed and subscription.as_of > event.created and subscription.status is SubscriptionStatus.ACTIVE:
            return True  # Stripe already told us, later, that the subscription is fine
        await self._settle(uow, subscription.workspace_id, now, cause, payment_failed=failed)
        return True

    async def _settle(self, uow: BillingUnitOfWork, workspace_id: UUID, now: datetime, cause: str,
                      payment_failed: bool | None = None) -> None:
        await settle(uow, workspace_id, self._catalogue, now, cause, self._config.grace_period,
                     payment_failed=payment_failed)


async def note_failure(uow: BillingUnitOfWork, event: StripeEvent, error: Exception, now: datetime) -> None:
    await uow.stripe_events.record_failure(event, f"{type(error).__name__}: {error}"[:1000], now)
    await uow.commit()


class AcceptStripeEvent:
    """- Stores a verified Stripe event for a worker to apply: "accepted", or "duplicate" when Keel has it
      already (one that failed is accepted again). Stripe gets its answer at once; `wake` asks for a worker
      run (coalesced by the adapter: a burst of events asks for one run, not one per event)."""

    def __init__(self, uow: Callable[[], BillingUnitOfWork], clock: Clock, wake: Callable[[], None]) -> None:
        self._uow = uow
        self._clock = clock
        self._wake = wake

    async def execute(self, event: StripeEvent) -> str:
        async with self._uow() as uow:
            accepted = await uow.stripe_events.receive(event, self._clock.now())
            await uow.commit()
        if accepted:
            self._wake()
        return "accepted" if accepted else "duplicate"


class ApplyReceivedStripeEvents:
    """- Applies the accepted events, oldest Stripe time first, each in its own transaction; returns how many
      it applied. One that fails is noted and left for a later run (at most MAX_ATTEMPTS tries), not retried
      in this one, and holds nothing back. Concurrent runs share the work: each event goes to one of them."""

    def __init__(self, uow: Callable[[], BillingUnitOfWork], handle: HandleStripeEvent, clock: Clock,
                 limit: int = 5000) -> None:
        self._uow = uow
        self._handle = handle
        self._clock = clock
        self._limit = limit  # a run ends after this many; the next wake or schedule goes on

    async def execute(self) -> int:
        applied, failed = 0, list[str]()
        while applied + len(failed) < self._limit:
            now = self._clock.now()
            async with self._uow() as uow:
                event = await uow.stripe_events.next_pending(failed, MAX_ATTEMPTS)
                if event is None:
                    break
                try:
                    await self._handle.apply(uow, event, now)
                    await uow.commit()
                    applied += 1
                except Exception as exc:
                    log.warning("Stripe event %s (%s) failed: %s; a later run retries it", event.id, event.type, exc)
                    failed.append(event.id)
                    await uow.rollback()
                    await note_failure(uow, event, exc, now)
        return applied
