"""Billing actors: apply the Stripe events the API accepted; reconcile local entitlements with Stripe (nightly,
and on demand)."""

from __future__ import annotations

import logging

import dramatiq

from src.core.billing.reconcile import RECONCILE_JOB
from src.core.billing.webhooks import APPLY_JOB
from src.ports.billing import BillingNotConfigured
from src.workers.runtime import services

log = logging.getLogger(__name__)


@dramatiq.actor(actor_name=RECONCILE_JOB, max_retries=5, min_backoff=60_000, max_backoff=3_600_000,
                time_limit=6 * 3_600_000)
async def reconcile() -> None:
    try:
        report = await services().reconcile_billing().execute()
    except BillingNotConfigured:
        log.info("Stripe is not configured; nothing to reconcile")
        return
    log.info("billing reconciliation %s: ran=%s seen=%d repaired=%d", report.run_id, report.ran,
             report.subscriptions_seen, report.repaired)


@dramatiq.actor(actor_name=APPLY_JOB, max_retries=3, min_backoff=1_000, max_backoff=60_000, time_limit=600_000)
async def apply_stripe_events() -> None:
    applied = await services().apply_received_stripe_events().execute()
    log.info("applied %d accepted Stripe event(s)", applied)
