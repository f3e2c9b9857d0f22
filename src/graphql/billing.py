"""Billing fields: plans, a workspace's entitlement, Stripe checkout and portal; for admins the billing
state of any workspace, the webhook log and reconciliation (repairs, run now)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from src.graphql.billing_types import (
    BillingOverviewType,
    BillingRedirect,
    EntitlementType,
    PlanType,
    ReconciliationQueued,
    ReconciliationRepairList,
    ReconciliationRepairType,
    WebhookEventList,
    WebhookEventStatusEnum,
    WebhookEventType,
)
from src.graphql.context import Info
from src.graphql.errors import InvalidInputError, NotFoundError, UnavailableError, answer
from src.graphql.ids import parse_id
from src.graphql.permissions import public, require
from src.ports.billing import EventStatus
from src.ports.identity import Permission

EntitlementResult = Annotated[
    EntitlementType | InvalidInputError | UnavailableError,
    strawberry.union("EntitlementResult")]
RedirectResult = Annotated[
    BillingRedirect | InvalidInputError | NotFoundError | UnavailableError,
    strawberry.union("BillingRedirectResult")]
OverviewResult = Annotated[
    BillingOverviewType | InvalidInputError | UnavailableError,
    strawberry.union("BillingOverviewResult")]
WebhookEventsResult = Annotated[
    WebhookEventList | InvalidInputError | UnavailableError,
    strawberry.union("WebhookEventsResult")]
RepairsResult = Annotated[
    ReconciliationRepairList | InvalidInputError | UnavailableError,
    strawberry.union("ReconciliationRepairsResult")]
ReconcileResult = Annotated[ReconciliationQueued | UnavailableError, strawberry.union("ReconcileBillingResult")]


@strawberry.type
class BillingQuery:
    @strawberry.field(extensions=public(), description="The plans on offer; purchasable ones have a Stripe price.")
    def plans(self, info: Info) -> list[PlanType]:
        return [PlanType.of(plan) for plan in info.context.services.catalogue().plans]

    @strawberry.field(extensions=require(Permission.WORKSPACE_READ, "workspace_id"),
                      description="The workspace's plan and limits as Keel enforces them now.")
    async def entitlement(self, info: Info, workspace_id: strawberry.ID) -> EntitlementResult:
        caller, view = await info.context.principal(), info.context.services.view_entitlement()
        return await answer(lambda: view.execute(caller, parse_id(workspace_id, "workspaceId")), EntitlementType.of)

    @strawberry.field(extensions=require(Permission.BILLING_ADMIN),
                      description="Admin: a workspace's customer, subscriptions, entitlement and its history.")
    async def billing_overview(self, info: Info, workspace_id: strawberry.ID, history: int = 50) -> OverviewResult:
        caller, overview = await info.context.principal(), info.context.services.billing_overview()
        return await answer(lambda: overview.execute(caller, parse_id(workspace_id, "workspaceId"), history),
                            BillingOverviewType.of)

    @strawberry.field(extensions=require(Permission.BILLING_ADMIN),
                      description="Admin: Stripe webhook events received, newest first.")
    async def webhook_events(self, info: Info, status: WebhookEventStatusEnum | None = None,
                             first: int = 50) -> WebhookEventsResult:
        caller, listing = await info.context.principal(), info.context.services.list_webhook_events()
        wanted = EventStatus(status.value) if status else None
        return await answer(lambda: listing.execute(caller, wanted, first),
                            lambda events: WebhookEventList(events=[WebhookEventType.of(e) for e in events]))

    @strawberry.field(extensions=require(Permission.BILLING_ADMIN),
                      description="Admin: entitlements reconciliation repaired, newest first, before and after.")
    async def reconciliation_repairs(self, info: Info, first: int = 50) -> RepairsResult:
        caller, listing = await info.context.principal(), info.context.services.list_billing_repairs()
        return await answer(lambda: listing.execute(caller, first), lambda repairs: ReconciliationRepairList(
            repairs=[ReconciliationRepairType.of(repair) for repair in repairs]))


@strawberry.type
class BillingMutation:
    @strawberry.mutation(extensions=require(Permission.BILLING_MANAGE, "workspace_id"),
                         description="A Stripe Checkout page subscribing the workspace to a plan.")
    async def start_checkout(self, info: Info, workspace_id: strawberry.ID, plan: str) -> RedirectResult:
        caller, checkout = await info.context.principal(), info.context.services.start_checkout()
        return await answer(lambda: checkout.execute(caller, parse_id(workspace_id, "workspaceId"), plan),
                            lambda url: BillingRedirect(url=url))

    @strawberry.mutation(extensions=require(Permission.BILLING_MANAGE, "workspace_id"),
                         description="A Stripe customer portal page (payment methods, invoices, cancel).")
    async def open_billing_portal(self, info: Info, workspace_id: strawberry.ID) -> RedirectResult:
        caller, portal = await info.context.principal(), info.context.services.open_billing_portal()
        return await answer(lambda: portal.execute(caller, parse_id(workspace_id, "workspaceId")),
                            lambda url: BillingRedirect(url=url))

    @strawberry.mutation(extensions=require(Permission.BILLING_ADMIN),
                         description="Admin: queue a reconciliation with Stripe now.")
    async def reconcile_billing(self, info: Info) -> ReconcileResult:
        caller, request = await info.context.principal(), info.context.services.request_reconciliation()
        return await answer(lambda: request.execute(caller), lambda _: ReconciliationQueued())
