"""Billing in Postgres: customers, subscriptions, entitlements + history, Stripe events, repairs."""

from __future__ import annotations

import zlib
from dataclasses import fields
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Table, bindparam, delete, func, select, text, union, update
from sqlalchemy.dialects.postgresql import Insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from src.adapters.postgres.billing.tables import (
    BillingCustomerRow,
    EntitlementHistoryRow,
    EntitlementRow,
    ReconciliationRepairRow,
    StripeEventRow,
    SubscriptionRow,
)
from src.adapters.postgres.mapping import to_record, values_of
from src.ports.billing import (
    Customer,
    Entitlement,
    EntitlementChange,
    EntitlementStatus,
    EventRecord,
    EventStatus,
    PlanLimits,
    Repair,
    StripeEvent,
    Subscription,
    SubscriptionStatus,
)

LOCK_CLASS = zlib.crc32(b"keel.billing") & 0x7FFFFFFF  # advisory lock namespace for billing
RECONCILIATION_LOCK = 1

# What every webhook runs, built once on the tables (not the ORM classes): each call only binds values and
# SQLAlchemy reuses the compiled form. Building ORM statements per call was most of a webhook's CPU.
SUBSCRIPTIONS, ENTITLEMENTS, EVENTS = SubscriptionRow.__table__, EntitlementRow.__table__, StripeEventRow.__table__


def _upsert(table: Table, key: str, record_type: type, **also: Any) -> Insert:
    statement = pg_insert(table)
    names = [field.name for field in fields(record_type) if field.name != key]
    return statement.on_conflict_do_update(index_elements=[key], set_={
        **{name: statement.excluded[name] for name in names}, **also})


SUBSCRIPTION = select(SUBSCRIPTIONS).where(SUBSCRIPTIONS.c.id == bindparam("id"))
SUBSCRIPTION_LOCKED = SUBSCRIPTION.with_for_update()
SUBSCRIPTIONS_OF = select(SUBSCRIPTIONS).where(SUBSCRIPTIONS.c.workspace_id == bindparam("workspace_id")).order_by(
    SUBSCRIPTIONS.c.as_of)
SAVE_SUBSCRIPTION = _upsert(SUBSCRIPTIONS, "id", Subscription, updated_at=func.now())
ENTITLEMENT = select(ENTITLEMENTS).where(ENTITLEMENTS.c.workspace_id == bindparam("workspace_id"))
ENTITLEMENT_LOCKED = ENTITLEMENT.with_for_update()
SAVE_ENTITLEMENT = _upsert(ENTITLEMENTS, "workspace_id", Entitlement)
ADD_HISTORY = pg_insert(EntitlementHistoryRow.__table__)
LOCK_WORKSPACE = text("SELECT pg_advisory_xact_lock(:space, hashtext(:key))")
RECORDED = [EVENTS.c[field.name] for field in fields(EventRecord)]  # not the payload: decoding it is not free
CLAIM = pg_insert(EVENTS).on_conflict_do_nothing().returning(*RECORDED)
CLAIMED = select(*RECORDED).where(EVENTS.c.id == bindparam("id")).with_for_update()
RETRIED = update(EVENTS).where(EVENTS.c.id == bindparam("event_id")).values(
    attempts=EVENTS.c.attempts + 1).returning(*RECORDED)
RECEIVE = pg_insert(EVENTS).on_conflict_do_update(  # a failed event delivered again is received again
    index_elements=["id"], set_={"status": EventStatus.RECEIVED.value},
    where=EVENTS.c.status == EventStatus.FAILED.value).returning(EVENTS.c.id)
PENDING = select(EVENTS.c.id).where(
    (EVENTS.c.status == EventStatus.RECEIVED.value)
    | ((EVENTS.c.status == EventStatus.FAILED.value) & (EVENTS.c.attempts < bindparam("max_attempts"))),
    EVENTS.c.id.not_in(bindparam("skip", expanding=True))).order_by(EVENTS.c.created, EVENTS.c.received_at).limit(
    1).with_for_update(skip_locked=True).scalar_subquery()
TAKE_PENDING = update(EVENTS).where(EVENTS.c.id == PENDING).values(attempts=EVENTS.c.attempts + 1).returning(
    EVENTS.c.id, EVENTS.c.type, EVENTS.c.created, EVENTS.c.payload)
FINISH = update(EVENTS).where(EVENTS.c.id == bindparam("event_id"))


def _subscription(row: SubscriptionRow) -> Subscription:
    return to_record(row, Subscription, status=SubscriptionStatus(row.status))


def _entitlement(row: EntitlementRow) -> Entitlement:
    return to_record(row, Entitlement, limits=PlanLimits.from_dict(row.limits),
                     status=EntitlementStatus(row.status))


def _event(row: StripeEventRow) -> EventRecord:
    return to_record(row, EventRecord, status=EventStatus(row.status))


class PgBillingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def customer(self, workspace_id: UUID) -> Customer | None:
        row = await self._session.get(BillingCustomerRow, workspace_id, populate_existing=True)
        return None if row is None else to_record(row, Customer)

    async def customer_by_stripe_id(self, customer_id: str) -> Customer | None:
        row = (await self._session.execute(select(BillingCustomerRow).where(
            BillingCustomerRow.customer_id == customer_id))).scalar_one_or_none()
        return None if row is None else to_record(row, Customer)

    async def add_customer(self, customer: Customer) -> bool:
        added = await self._session.execute(pg_insert(BillingCustomerRow).values(**values_of(customer))
                                            .on_conflict_do_nothing().returning(BillingCustomerRow.workspace_id))
        return added.scalar_one_or_none() is not None

    async def remove_customer(self, customer_id: str) -> None:
        await self._session.execute(delete(BillingCustomerRow).where(BillingCustomerRow.customer_id == customer_id))

    async def subscription(self, subscription_id: str, *, for_update: bool = False) -> Subscription | None:
        query = SUBSCRIPTION_LOCKED if for_update else SUBSCRIPTION
        row = (await self._session.execute(query, {"id": subscription_id})).one_or_none()
        return None if row is None else _subscription(row)

    async def subscriptions_of(self, workspace_id: UUID) -> list[Subscription]:
        rows = await self._session.execute(SUBSCRIPTIONS_OF, {"workspace_id": workspace_id})
        return [_subscription(row) for row in rows]

    async def save_subscription(self, subscription: Subscription) -> None:
        await self._session.execute(SAVE_SUBSCRIPTION, values_of(subscription, status=subscription.status.value))

    async def entitlement(self, workspace_id: UUID, *, for_update: bool = False) -> Entitlement | None:
        query = ENTITLEMENT_LOCKED if for_update else ENTITLEMENT  # read on every answer
        row = (await self._session.execute(query, {"workspace_id": workspace_id})).one_or_none()
        return None if row is None else _entitlement(row)

    async def save_entitlement(self, entitlement: Entitlement, change: EntitlementChange) -> None:
        await self._session.execute(SAVE_ENTITLEMENT, values_of(
            entitlement, status=entitlement.status.value, limits=entitlement.limits.as_dict()))
        await self._session.execute(ADD_HISTORY, values_of(change))

    async def history(self, workspace_id: UUID, limit: int) -> list[EntitlementChange]:
        rows = await self._session.execute(select(EntitlementHistoryRow).where(
            EntitlementHistoryRow.workspace_id == workspace_id).order_by(EntitlementHistoryRow.id.desc()).limit(limit))
        return [to_record(row, EntitlementChange) for row in rows.scalars()]

    async def workspaces_with_billing(self) -> list[UUID]:
        ids = union(select(EntitlementRow.workspace_id),
                    select(SubscriptionRow.workspace_id).where(SubscriptionRow.workspace_id.is_not(None)))
        return list((await self._session.execute(ids)).scalars())

    async def lock_workspace(self, workspace_id: UUID) -> None:
        await self._session.execute(LOCK_WORKSPACE, {"space": LOCK_CLASS, "key": str(workspace_id)})


class PgStripeEventLog:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim(self, event: StripeEvent, now: datetime) -> EventRecord | None:
        # A concurrent delivery of the same id waits here on the primary key until the first one's
        # transaction ends, then finds its row.
        inserted = (await self._session.execute(CLAIM, {
            "id": event.id, "type": event.type, "created": event.created, "status": EventStatus.RECEIVED.value,
            "attempts": 1, "payload": event.data, "received_at": now})).one_or_none()
        if inserted is not None:
            return _event(inserted)
        row = (await self._session.execute(CLAIMED, {"id": event.id})).one()
        if row.status in (EventStatus.PROCESSED.value, EventStatus.IGNORED.value):
            return None
        return _event((await self._session.execute(RETRIED, {"event_id": event.id})).one())

    async def receive(self, event: StripeEvent, now: datetime) -> bool:
        return (await self._session.execute(RECEIVE, {
            "id": event.id, "type": event.type, "created": event.created, "status": EventStatus.RECEIVED.value,
            "attempts": 0, "payload": event.data, "received_at": now})).one_or_none() is not None

    async def next_pending(self, skip: list[str], max_attempts: int) -> StripeEvent | None:
        row = (await self._session.execute(TAKE_PENDING, {"skip": skip, "max_attempts": max_attempts})).one_or_none()
        return None if row is None else StripeEvent(row.id, row.type, row.created, row.payload)

    async def finish(self, event_id: str, status: EventStatus, now: datetime) -> None:
        await self._session.execute(FINISH, {"event_id": event_id, "status": status.value, "processed_at": now,
                                             "last_error": None})

    async def record_failure(self, event: StripeEvent, error: str, now: datetime) -> None:
        statement = pg_insert(StripeEventRow).values(
            id=event.id, type=event.type, created=event.created, status=EventStatus.FAILED.value, attempts=1,
            last_error=error, payload=event.data, received_at=now)
        await self._session.execute(statement.on_conflict_do_update(
            index_elements=["id"],
            set_={"status": EventStatus.FAILED.value, "last_error": error, "attempts": StripeEventRow.attempts + 1},
            where=StripeEventRow.status.not_in([EventStatus.PROCESSED.value, EventStatus.IGNORED.value])))

    async def recent(self, status: EventStatus | None, limit: int) -> list[EventRecord]:
        query = select(StripeEventRow).order_by(StripeEventRow.received_at.desc()).limit(limit)
        if status is not None:
            query = query.where(StripeEventRow.status == status.value)
        return [_event(row) for row in (await self._session.execute(query)).scalars()]


class PgReconciliationLog:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def try_lock(self) -> bool:
        found = await self._session.execute(text("SELECT pg_try_advisory_xact_lock(:space, :key)"),
                                            {"space": LOCK_CLASS, "key": RECONCILIATION_LOCK})
        return bool(found.scalar_one())

    async def add_repair(self, repair: Repair) -> None:
        await self._session.execute(pg_insert(ReconciliationRepairRow).values(**values_of(repair)))

    async def repairs(self, limit: int) -> list[Repair]:
        rows = await self._session.execute(select(ReconciliationRepairRow)
                                           .order_by(ReconciliationRepairRow.id.desc()).limit(limit))
        return [to_record(row, Repair) for row in rows.scalars()]
