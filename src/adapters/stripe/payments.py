"""PaymentProvider on the official Stripe SDK (async). Every write carries an idempotency key; listing is
paginated and waits out rate limits (Retry-After when Stripe sends one)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from uuid import UUID

import stripe

from src.ports.billing import (
    BillingNotConfigured,
    CheckoutRequest,
    PaymentProviderUnavailable,
    Subscription,
    SubscriptionPage,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
PAGE_SIZE = 100


def _retry_after(error: stripe.StripeError) -> float | None:
    headers = error.headers or {}
    value = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class StripePayments:
    def __init__(self, api_key: str, api_base: str | None = None, *, network_retries: int = 2,
                 rate_limit_attempts: int = 6, max_backoff_seconds: float = 30.0) -> None:
        addresses = {"api": api_base.rstrip("/")} if api_base else None
        self._client = stripe.StripeClient(api_key, base_addresses=addresses, max_network_retries=network_retries)
        self._rate_limit_attempts = rate_limit_attempts
        self._max_backoff = max_backoff_seconds

    async def _call(self, what: str, request: Callable[[], Awaitable[T]]) -> T:
        """Runs `request`, waiting out 429s; any other Stripe failure is PaymentProviderUnavailable."""
        for attempt in range(1, self._rate_limit_attempts + 1):
            try:
                return await request()
            except stripe.RateLimitError as exc:
                if attempt == self._rate_limit_attempts:
                    raise PaymentProviderUnavailable(f"Stripe kept rate-limiting {what}") from exc
                delay = _retry_after(exc) or min(self._max_backoff, 0.5 * 2 ** attempt) * random.uniform(0.5, 1)
                log.info("Stripe rate limit on %s; retrying in %.2fs", what, delay)
                await asyncio.sleep(min(delay, self._max_backoff))
            except stripe.StripeError as exc:
                raise PaymentProviderUnavailable(f"Stripe could not {what}: {exc.user_message or exc}") from exc
        raise AssertionError("unreachable")

    async def create_customer(self, workspace_id: UUID, name: str, idempotency_key: str) -> str:
        customer = await self._call("create the customer", lambda: self._client.v1.customers.create_async(
            params={"name": name, "metadata": {"workspace_id": str(workspace_id)}},
            options={"idempotency_key": idempotency_key}))
        return customer.id

    async def create_checkout(self, request: CheckoutRequest) -> str:
        metadata = {"workspace_id": str(request.workspace_id), "plan": request.plan}
        params: dict[str, Any] = {
            "mode": "subscription", "customer": request.customer_id,
            "client_reference_id": str(request.workspace_id),
            "line_items": [{"price": request.price_id, "quantity": 1}],
            "success_url": request.success_url, "cancel_url": request.cancel_url,
            "metadata": metadata, "subscription_data": {"metadata": metadata},
        }
        session = await self._call("start a checkout", lambda: self._client.v1.checkout.sessions.create_async(
            params=params, options={"idempotency_key": request.idempotency_key}))
        return session.url

    async def create_portal(self, customer_id: str, return_url: str) -> str:
        session = await self._call("open the billing portal", lambda: self._client.v1.billing_portal.sessions
                                   .create_async(params={"customer": customer_id, "return_url": return_url}))
        return session.url

    async def subscriptions(self, cursor: str | None) -> SubscriptionPage:
        params: dict[str, Any] = {"status": "all", "limit": PAGE_SIZE}
        if cursor:
            params["starting_after"] = cursor
        page = await self._call("list subscriptions", lambda: self._client.v1.subscriptions.list_async(params=params))
        raw = [item.to_dict() for item in page.data]
        subscriptions = [Subscription.from_stripe(item, int(item.get("created") or 0)) for item in raw]
        next_cursor = raw[-1]["id"] if page.has_more and raw else None
        return SubscriptionPage(subscriptions, next_cursor)


class StripeNotConfigured:
    """The PaymentProvider when no Stripe key is set: every call says so (entitlements still work)."""

    async def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise BillingNotConfigured("Stripe is not configured on this server (KEEL_STRIPE_API_KEY)")

    create_customer = create_checkout = create_portal = subscriptions = _refuse
