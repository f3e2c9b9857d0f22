"""Billing ports: plans and entitlements (what every other module checks), subscriptions as Stripe last
told us, the webhook event log, reconciliation, and the payment provider (Stripe) itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from src.ports.shared import DomainError, UnitOfWork


class PaymentProviderUnavailable(DomainError):
    code = "payment_provider_unavailable"


class BillingNotConfigured(DomainError):
    code = "billing_not_configured"


class QuotaExceeded(DomainError):
    """A hard limit of the workspace's plan is reached; the message says which and how to lift it."""

    code = "quota_exceeded"

    def __init__(self, message: str, limit: str) -> None:
        super().__init__(message)
        self.limit = limit  # "daily_tokens", "max_documents", "max_storage_bytes", …


DEFAULT_REQUESTS_PER_MINUTE = 1_200  # for plans stored or configured before the limit existed


@dataclass(frozen=True, slots=True)
class PlanLimits:
    daily_tokens: int  # hard cap per workspace per day; past it requests get QuotaExceeded
    soft_cap_tokens: int  # past it requests switch to `cheaper_model`
    max_documents: int
    max_storage_bytes: int
    seats: int
    models: tuple[str, ...]  # models the plan may use, best first
    cheaper_model: str
    requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE  # the workspace's rate limit (request units)

    def as_dict(self) -> dict[str, Any]:
        return {"daily_tokens": self.daily_tokens, "soft_cap_tokens": self.soft_cap_tokens,
                "max_documents": self.max_documents, "max_storage_bytes": self.max_storage_bytes,
                "seats": self.seats, "models": list(self.models), "cheaper_model": self.cheaper_model,
                "requests_per_minute": self.requests_per_minute}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> PlanLimits:
        return cls(int(raw["daily_tokens"]), int(raw["soft_cap_tokens"]), int(raw["max_documents"]),
                   int(raw["max_storage_bytes"]), int(raw["seats"]), tuple(raw["models"]), str(raw["cheaper_model"]),
                   int(raw.get("requests_per_minute", DEFAULT_REQUESTS_PER_MINUTE)))


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    limits: PlanLimits
    price_id: str | None = None  # the Stripe price; None for the free plan


class EntitlementStatus(StrEnum):
    ACTIVE = "active"
    GRACE = "grace"  # a payment failed: the plan holds until `grace_until`, then free applies


@dataclass(frozen=True, slots=True)
class Entitlement:
    workspace_id: UUID
    plan: str
    limits: PlanLimits
    status: EntitlementStatus
    grace_until: datetime | None
    subscription_id: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class EntitlementChange:
    workspace_id: UUID
    before: dict[str, Any] | None
    after: dict[str, Any]
    cause: str  # "event:evt_…", "reconciliation:<run id>", …
    at: datetime


class SubscriptionStatus(StrEnum):
    INCOMPLETE = "incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired"
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELED = "canceled"
    UNPAID = "unpaid"
    PAUSED = "paused"


@dataclass(frozen=True, slots=True)
class Subscription:
    """A Stripe subscription as Keel last learned it; `as_of` is the Stripe time of that state."""

    id: str
    customer_id: str
    workspace_id: UUID | None
    status: SubscriptionStatus
    price_id: str | None
    plan_hint: str | None  # metadata.plan, when the price is unknown to the configuration
    current_period_end: datetime | None
    cancel_at_period_end: bool
    as_of: int

    @classmethod
    def from_stripe(cls, data: dict[str, Any], as_of: int) -> Subscription:
        """From a Stripe subscription object, as a webhook event or the API gives it."""
        items = (data.get("items") or {}).get("data") or [{}]
        price = items[0].get("price") or {}
        period_end = data.get("current_period_end") or items[0].get("current_period_end")
        status = data.get("status", "incomplete")
        return cls(
            id=data["id"], customer_id=stripe_id(data.get("customer")) or "",
            workspace_id=uuid_or_none((data.get("metadata") or {}).get("workspace_id")),
            status=SubscriptionStatus(status) if status in SubscriptionStatus._value2member_map_ else
            SubscriptionStatus.INCOMPLETE,
            price_id=stripe_id(price), plan_hint=(data.get("metadata") or {}).get("plan"),
            current_period_end=datetime.fromtimestamp(period_end, UTC) if period_end else None,
            cancel_at_period_end=bool(data.get("cancel_at_period_end")), as_of=as_of)


def stripe_id(value: Any) -> str | None:
    """Stripe fields are ids or, when expanded, objects with an id."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else None


def uuid_or_none(raw: Any) -> UUID | None:
    """A workspace id as Stripe metadata carries it (anything else: None)."""
    try:
        return UUID(str(raw)) if raw else None
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Customer:
    workspace_id: UUID
    customer_id: str
    created_at: datetime


class EventStatus(StrEnum):
    RECEIVED = "received"  # claimed by a delivery still in flight
    PROCESSED = "processed"
    IGNORED = "ignored"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class StripeEvent:
    id: str
    type: str
    created: int
    data: dict[str, Any]  # the event's data.object


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: str
    type: str
    created: int
    status: EventStatus
    attempts: int
    last_error: str | None
    received_at: datetime
    processed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Repair:
    run_id: UUID
    workspace_id: UUID
    before: dict[str, Any] | None
    after: dict[str, Any]
    at: datetime


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    customer_id: str
    price_id: str
    workspace_id: UUID
    plan: str
    success_url: str
    cancel_url: str
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class SubscriptionPage:
    subscriptions: list[Subscription]
    next_cursor: str | None = None


@runtime_checkable
class PaymentProvider(Protocol):
    async def create_customer(self, workspace_id: UUID, name: str, idempotency_key: str) -> str: ...

    async def create_checkout(self, request: CheckoutRequest) -> str:
        """The URL of a Checkout Session for a subscription."""
        ...

    async def create_portal(self, customer_id: str, return_url: str) -> str: ...

    async def subscriptions(self, cursor: str | None) -> SubscriptionPage:
        """One page of every subscription (all statuses), oldest Stripe pagination semantics."""
        ...


@runtime_checkable
class EntitlementChecker(Protocol):
    """What the rest of Keel asks: the workspace's effective plan and limits, from the local table only."""

    async def entitlement(self, workspace_id: UUID) -> Entitlement: ...


@runtime_checkable
class BillingRepository(Protocol):
    async def customer(self, workspace_id: UUID) -> Customer | None: ...

    async def customer_by_stripe_id(self, customer_id: str) -> Customer | None: ...

    async def add_customer(self, customer: Customer) -> bool:
        """False when the workspace already has one."""
        ...

    async def remove_customer(self, customer_id: str) -> None: ...

    async def subscription(self, subscription_id: str, *, for_update: bool = False) -> Subscription | None: ...

    async def subscriptions_of(self, workspace_id: UUID) -> list[Subscription]: ...

    async def save_subscription(self, subscription: Subscription) -> None: ...

    async def entitlement(self, workspace_id: UUID, *, for_update: bool = False) -> Entitlement | None: ...

    async def save_entitlement(self, entitlement: Entitlement, change: EntitlementChange) -> None: ...

    async def history(self, workspace_id: UUID, limit: int) -> list[EntitlementChange]: ...

    async def workspaces_with_billing(self) -> list[UUID]:
        """Workspaces with an entitlement row or a subscription."""
        ...

    async def lock_workspace(self, workspace_id: UUID) -> None:
        """Serialises entitlement changes of one workspace until the transaction ends."""
        ...


@runtime_checkable
class EventLog(Protocol):
    async def claim(self, event: StripeEvent, now: datetime) -> EventRecord | None:
        """The event's row, locked for this transaction (inserted when new); None when it was already
        processed or ignored: a duplicate delivery. Waits while another delivery of it is in flight."""
        ...

    async def receive(self, event: StripeEvent, now: datetime) -> bool:
        """Stores a new event as RECEIVED, to be applied later (a FAILED one is received again); False when
        Keel already has it."""
        ...

    async def next_pending(self, skip: list[str], max_attempts: int) -> StripeEvent | None:
        """The oldest (by Stripe time) event received but not applied, or failed fewer than `max_attempts`
        times, not in `skip` (those that failed in this run): locked for this transaction (concurrent callers
        take others), its attempts counted."""
        ...

    async def finish(self, event_id: str, status: EventStatus, now: datetime) -> None: ...

    async def record_failure(self, event: StripeEvent, error: str, now: datetime) -> None: ...

    async def recent(self, status: EventStatus | None, limit: int) -> list[EventRecord]: ...


@runtime_checkable
class ReconciliationLog(Protocol):
    async def try_lock(self) -> bool:
        """A transaction-scoped advisory lock: False when another reconciliation holds it."""
        ...

    async def add_repair(self, repair: Repair) -> None: ...

    async def repairs(self, limit: int) -> list[Repair]: ...


class BillingUnitOfWork(UnitOfWork, Protocol):
    billing: BillingRepository
    stripe_events: EventLog
    reconciliation: ReconciliationLog
