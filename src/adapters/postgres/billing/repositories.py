"""Billing in Postgres: customers, subscriptions, entitlements + history, Stripe events, repairs."""

from __future__ import annotations

import zlib
from datetime import datetime
from uuid import UUID

from sqlalchemy import delete, func, select, text, union, update
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
        query = select(SubscriptionRow).where(SubscriptionRow.id == subscription_id).execution_options(
            populate_existing=True)
        row = (await self._session.execute(query.with_for_update() if for_update else query)).scalar_one_or_none()
        return None if row is None else _subscription(row)

    async def subscriptions_of(self, workspace_id: UUID) -> list[Subscription]:
        rows = await self._session.execute(select(SubscriptionRow).where(SubscriptionRow.workspace_id == workspace_id)
                                           .order_by(SubscriptionRow.as_of).execution_options(populate_existing=True))
        return [_subscription(row) for row in rows.scalars()]

    async def save_subscription(self, subscription: Subscription) -> None:
        values = values_of(subscription, status=subscription.status.value)
        statement = pg_insert(SubscriptionRow).values(**values)
        await self._session.execute(statement.on_conflict_do_update(
            index_elements=["id"], set_={**{key: statement.excluded[key] for key in values if key != "id"},
                                         "updated_at": func.now()}))

    async def entitlement(self, workspace_id: UUID, *, for_update: bool = False) -> Entitlement | None:
        table = EntitlementRow.__table__  # a plain row: checked on every answer, the ORM's CPU is not needed
        query = select(table).where(table.c.workspace_id == workspace_id)
        row = (await self._session.execute(query.with_for_update() if for_update else query)).one_or_none()
        return None if row is None else _entitlement(row)

    async def save_entitlement(self, entitlement: Entitlement, change: EntitlementChange) -> None:
        values = values_of(entitlement, status=entitlement.status.value, limits=entitlement.limits.as_dict())
        statement = pg_insert(EntitlementRow).values(**values)
        await self._session.execute(statement.on_conflict_do_update(
            index_elements=["workspace_id"],
            set_={key: statement.excluded[key] for key in values if key != "workspace_id"}))
        await self._session.execute(pg_insert(EntitlementHistoryRow).values(**values_of(change)))

    async def history(self, workspace_id: UUID, limit: int) -> list[EntitlementChange]:
        rows = await self._session.execute(select(EntitlementHistoryRow).where(
            EntitlementHistoryRow.workspace_id == workspace_id).order_by(EntitlementHistoryRow.id.desc()).limit(limit))
        return [to_record(row, EntitlementChange) for row in rows.scalars()]

    async def workspaces_with_billing(self) -> list[UUID]:
        ids = union(select(EntitlementRow.workspace_id),
                    select(SubscriptionRow.workspace_id).where(SubscriptionRow.workspace_id.is_not(None)))
        return list((await self._session.execute(ids)).scalars())

    async def lock_workspace(self, workspace_id: UUID) -> None:
        await self._session.execute(text("SELECT pg_advisory_xact_lock(:space, hashtext(:key))"),
                                    {"space": LOCK_CLASS, "key": str(workspace_id)})


class PgStripeEventLog:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim(self, event: StripeEvent, now: datetime) -> EventRecord | None:
        # A concurrent delivery of the same id waits here on the primary key until the first one's
        # transaction ends, then finds its row.
        inserted = await self._session.execute(pg_insert(StripeEventRow).values(
            id=event.id, type=event.type, created=event.created, status=EventStatus.RECEIVED.value, attempts=1,
            payload=event.data, received_at=now).on_conflict_do_nothing().returning(StripeEventRow.id))
        if inserted.scalar_one_or_none() is None:
            row = (await self._session.execute(select(StripeEventRow).where(StripeEventRow.id == event.id)
                                               .with_for_update().execution_options(populate_existing=True))
                   ).scalar_one()
            if row.status in (EventStatus.PROCESSED.value, EventStatus.IGNORED.value):
                return None
            row.attempts += 1
        row = await self._session.get(StripeEventRow, event.id)
        return _event(row)

    async def finish(self, event_id: str, status: EventStatus, now: datetime) -> None:
        await self._session.execute(update(StripeEventRow).where(StripeEventRow.id == event_id).values(
            status=status.value, processed_at=now, last_error=None))

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
