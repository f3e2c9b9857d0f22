"""Billing wiring: Stripe, webhooks, checkout and portal, reconciliation, and the admin views."""

from __future__ import annotations

from dependency_injector import providers

from src.adapters.queue.coalesced import CoalescedJob
from src.adapters.stripe.payments import StripeNotConfigured, StripePayments
from src.config import Settings
from src.core.billing import checkout, views
from src.core.billing.reconcile import Reconcile, RequestReconciliation
from src.core.billing.webhooks import APPLY_JOB, AcceptStripeEvent, ApplyReceivedStripeEvents, HandleStripeEvent
from src.ports.billing import PaymentProvider
from src.ports.shared import Job
from src.wiring.foundation import Foundation

F = Foundation


def payment_provider(settings: Settings) -> PaymentProvider:
    if not settings.stripe_api_key:
        return StripeNotConfigured()
    return StripePayments(settings.stripe_api_key, settings.stripe_api_base)


class BillingWiring(Foundation):
    payments = providers.Singleton(payment_provider, F.settings)
    handle_stripe_event = providers.Factory(HandleStripeEvent, F.billing_uow.provider, F.catalogue, F.clock, F.billing)
    # one per process: every accepted event of a burst asks for the same worker run
    wake_stripe_event_worker = providers.Singleton(CoalescedJob, F.jobs, providers.Factory(Job, APPLY_JOB, context={}))
    accept_stripe_event = providers.Factory(AcceptStripeEvent, F.billing_uow.provider, F.clock,
                                            wake_stripe_event_worker)
    apply_received_stripe_events = providers.Factory(ApplyReceivedStripeEvents, F.billing_uow.provider,
                                                     handle_stripe_event, F.clock)
    start_checkout = providers.Factory(checkout.StartCheckout, F.billing_uow.provider, payments, F.catalogue, F.clock,
                                       F.settings.provided.billing_return_url, F.access)
    open_billing_portal = providers.Factory(checkout.OpenPortal, F.billing_uow.provider, payments, F.clock,
                                            F.settings.provided.billing_return_url, F.access)
    reconcile_billing = providers.Factory(Reconcile, F.billing_uow.provider, payments, F.catalogue, F.clock, F.billing)
    request_reconciliation = providers.Factory(RequestReconciliation, F.billing_uow.provider, F.access)
    billing_overview = providers.Factory(views.GetBillingOverview, F.billing_uow.provider, F.catalogue, F.clock,
                                         F.access)
    view_entitlement = providers.Factory(views.ViewEntitlement, F.entitlements, F.access)
    list_webhook_events = providers.Factory(views.ListWebhookEvents, F.billing_uow.provider, F.access)
    list_billing_repairs = providers.Factory(views.ListRepairs, F.billing_uow.provider, F.access)
