"""GraphQL types of billing: plans, entitlements, subscriptions and the operator's records."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import NewType

import strawberry
from strawberry.scalars import JSON

from src.core.billing.views import BillingOverview
from src.ports.billing import (
    Entitlement,
    EntitlementChange,
    EventRecord,
    Plan,
    PlanLimits,
    Repair,
    Subscription,
)

Long = NewType("Long", int)
LONG_SCALAR = strawberry.scalar(name="Long", serialize=int, parse_value=int,
                                description="An integer that may exceed 32 bits (byte counts).")


@strawberry.enum(name="EntitlementStatus")
class EntitlementStatusEnum(Enum):
    ACTIVE = "active"
    GRACE = "grace"


@strawberry.enum(name="WebhookEventStatus")
class WebhookEventStatusEnum(Enum):
    RECEIVED = "received"
    PROCESSED = "processed"
    IGNORED = "ignored"
    FAILED = "failed"


@strawberry.type(name="PlanLimits")
class PlanLimitsType:
    daily_tokens: int
    soft_cap_tokens: int
    max_documents: int
    max_storage_bytes: Long
    seats: int
    models: list[str]
    cheaper_model: str
    requests_per_minute: int = strawberry.field(description="The workspace's rate limit, in request units a minute.")

    @classmethod
    def of(cls, limits: PlanLimits) -> PlanLimitsType:
        return cls(daily_tokens=limits.daily_tokens, soft_cap_tokens=limits.soft_cap_tokens,
                   max_documents=limits.max_documents, max_storage_bytes=limits.max_storage_bytes,
                   seats=limits.seats, models=list(limits.models), cheaper_model=limits.cheaper_model,
                   requests_per_minute=limits.requests_per_minute)


@strawberry.type(name="Plan")
class PlanType:
    name: str
    limits: PlanLimitsType
    purchasable: bool

    @classmethod
    def of(cls, plan: Plan) -> PlanType:
        return cls(name=plan.name, limits=PlanLimitsType.of(plan.limits), purchasable=plan.price_id is not None)


@strawberry.type(name="Entitlement")
class EntitlementType:
    workspace_id: strawberry.ID
    plan: str
    status: EntitlementStatusEnum
    grace_until: datetime | None
    subscription_id: str | None
    limits: PlanLimitsType
    updated_at: datetime

    @classmethod
    def of(cls, entitlement: Entitlement) -> EntitlementType:
        return cls(workspace_id=strawberry.ID(str(entitlement.workspace_id)), plan=entitlement.plan,
                   status=EntitlementStatusEnum(entitlement.status.value), grace_until=entitlement.grace_until,
                   subscription_id=entitlement.subscription_id, limits=PlanLimitsType.of(entitlement.limits),
                   updated_at=entitlement.updated_at)


@strawberry.type(description="A URL on Stripe to send the browser to.")
class BillingRedirect:
    url: str


@strawberry.type(name="BillingSubscription")
class SubscriptionType:
    id: str
    customer_id: str
    status: str
    price_id: str | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    stripe_time: int = strawberry.field(description="Stripe time (epoch seconds) of the state Keel holds")

    @classmethod
    def of(cls, subscription: Subscription) -> SubscriptionType:
        return cls(id=subscription.id, customer_id=subscription.customer_id, status=subscription.status.value,
                   price_id=subscription.price_id, current_period_end=subscription.current_period_end,
                   cancel_at_period_end=subscription.cancel_at_period_end, stripe_time=subscription.as_of)


@strawberry.type
class EntitlementChangeType:
    before: JSON | None
    after: JSON
    cause: str
    at: datetime

    @classmethod
    def of(cls, change: EntitlementChange) -> EntitlementChangeType:
        return cls(before=change.before, after=change.after, cause=change.cause, at=change.at)


@strawberry.type
class BillingOverviewType:
    workspace_id: strawberry.ID
    customer_id: str | None
    entitlement: EntitlementType
    subscriptions: list[SubscriptionType]
    history: list[EntitlementChangeType]

    @classmethod
    def of(cls, overview: BillingOverview) -> BillingOverviewType:
        return cls(workspace_id=strawberry.ID(str(overview.workspace_id)),
                   customer_id=overview.customer.customer_id if overview.customer else None,
                   entitlement=EntitlementType.of(overview.entitlement),
                   subscriptions=[SubscriptionType.of(item) for item in overview.subscriptions],
                   history=[EntitlementChangeType.of(item) for item in overview.history])


@strawberry.type
class WebhookEventType:
    id: str
    type: str
    stripe_time: int
    status: WebhookEventStatusEnum
    attempts: int
    last_error: str | None
    received_at: datetime
    processed_at: datetime | None

    @classmethod
    def of(cls, record: EventRecord) -> WebhookEventType:
        return cls(id=record.id, type=record.type, stripe_time=record.created,
                   status=WebhookEventStatusEnum(record.status.value), attempts=record.attempts,
                   last_error=record.last_error, received_at=record.received_at, processed_at=record.processed_at)


@strawberry.type
class WebhookEventList:
    events: list[WebhookEventType]


@strawberry.type
class ReconciliationRepairType:
    run_id: strawberry.ID
    workspace_id: strawberry.ID
    before: JSON | None
    after: JSON
    at: datetime

    @classmethod
    def of(cls, repair: Repair) -> ReconciliationRepairType:
        return cls(run_id=strawberry.ID(str(repair.run_id)), workspace_id=strawberry.ID(str(repair.workspace_id)),
                   before=repair.before, after=repair.after, at=repair.at)


@strawberry.type
class ReconciliationRepairList:
    repairs: list[ReconciliationRepairType]


@strawberry.type
class ReconciliationQueued:
    queued: bool = True
