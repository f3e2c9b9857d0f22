"""Billing's unit of work: customers, subscriptions and entitlements, Stripe's events, reconciliation repairs."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from src.adapters.postgres.billing.repositories import PgBillingRepository, PgReconciliationLog, PgStripeEventLog
from src.adapters.postgres.unit_of_work import PgUnitOfWork


class PgBillingUnitOfWork(PgUnitOfWork):
    billing: PgBillingRepository
    stripe_events: PgStripeEventLog
    reconciliation: PgReconciliationLog

    def _open(self, db: AsyncSession) -> None:
        self.billing = PgBillingRepository(db)
        self.stripe_events = PgStripeEventLog(db)
        self.reconciliation = PgReconciliationLog(db)
