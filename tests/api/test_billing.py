"""Billing through the ASGI app: plans, checkout and portal on a fake Stripe (real `stripe` SDK), signed
webhooks (duplicates, concurrency, order, forgery, mid-way failure), admin views, and entitlements taking
effect on the next request."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
from sqlalchemy import text

from src.container import build_container, shutdown
from src.main import create_app
from tests.conftest import asgi_client, graphql, graphql_upload, signed_up, signed_up_admin
from tests.fakes.stripe_api import event, sign, subscription_object

SECRET = "whsec_keel_test"
PLANS = "{ plans { name purchasable limits { maxDocuments maxStorageBytes models cheaperModel } } }"
ENTITLEMENT = """query($w: ID!) { entitlement(workspaceId: $w) { __typename
  ... on Entitlement { plan status graceUntil subscriptionId limits { maxDocuments } } ... on Error { code } } }"""
CHECKOUT = """mutation($w: ID!, $p: String!) { startCheckout(workspaceId: $w, plan: $p) { __typename
  ... on BillingRedirect { url } ... on Error { code message } } }"""
PORTAL = """mutation($w: ID!) { openBillingPortal(workspaceId: $w) { __typename ... on BillingRedirect { url }
  ... on Error { code message } } }"""
OVERVIEW = """query($w: ID!) { billingOverview(workspaceId: $w) { __typename ... on BillingOverviewType {
  customerId entitlement { plan status } subscriptions { id status priceId stripeTime }
  history { before after cause } } ... on Error { code } } }"""
EVENTS = """query($s: WebhookEventStatus) { webhookEvents(status: $s, first: 200) { __typename
  ... on WebhookEventList { events { id type status attempts lastError } } } }"""


@pytest.fixture
async def billing(settings, fake_stripe):
    """The app wired to the fake Stripe, with a webhook secret and prices for pro and team."""
    configured = settings.model_copy(update={
        "stripe_api_key": fake_stripe.api_key, "stripe_api_base": fake_stripe.url, "stripe_webhook_secret": SECRET,
        "stripe_prices": "pro=price_pro,team=price_team", "billing_grace_days": 3})
    container = build_container(configured)
    async with asgi_client(create_app(configured, container)) as client:
        client.container = container
        client.fake = fake_stripe
        yield client
    await shutdown(container)


async def deliver(client, payload: bytes, *, secret: str = SECRET, timestamp: int | None = None,
                  signature: str | None = None):
    header = signature if signature is not None else sign(payload, secret, timestamp)
    return await client.post("/webhooks/stripe", content=payload,
                             headers={"stripe-signature": header, "content-type": "application/json"})


def evt() -> str:
    return f"evt_{uuid.uuid4().hex[:20]}"


async def entitlement(client, token: str, workspace: str) -> dict:
    return (await graphql(client, ENTITLEMENT, w=workspace, token=token))["data"]["entitlement"]


async def stored_events(client, event_id: str) -> int:
    async with client.container.engine().connect() as connection:
        return (await connection.execute(text("SELECT count(*) FROM stripe_events WHERE id = :id"),
                                         {"id": event_id})).scalar_one()


async def subscribed(client, plan_price: str = "price_pro") -> tuple[dict, str, dict]:
    """A new account whose workspace went through checkout and got an active subscription by webhook."""
    account = await signed_up(client)
    workspace = account["user"]["workspaces"][0]["id"]
    url = (await graphql(client, CHECKOUT, w=workspace, p="pro", token=account["accessToken"]))["data"]
    assert url["startCheckout"]["__typename"] == "BillingRedirect", url
    customer = client.fake.checkout_sessions[-1]["customer"]
    subscription = subscription_object(f"sub_{uuid.uuid4().hex[:12]}", customer, plan_price, "active", workspace)
    now = int(time.time())
    session = {"id": f"cs_{uuid.uuid4().hex[:12]}", "object": "checkout.session", "customer": customer,
               "client_reference_id": workspace, "subscription": subscription["id"], "mode": "subscription"}
    assert (await deliver(client, event(evt(), "checkout.session.completed", session, now))).status_code == 200
    created = await deliver(client, event(evt(), "customer.subscription.created", subscription, now))
    assert created.json()["outcome"] == "processed"
    return account, workspace, subscription


async def test_plans_are_public_and_new_workspaces_are_on_free(billing):
    plans = (await graphql(billing, PLANS))["data"]["plans"]
    assert [(p["name"], p["purchasable"]) for p in plans] == [("free", False), ("pro", True), ("team", True)]
    assert plans[2]["limits"]["maxStorageBytes"] == 50_000_000_000  # beyond 32 bits: the Long scalar
    account = await signed_up(billing)
    seen = await entitlement(billing, account["accessToken"], account["user"]["workspaces"][0]["id"])
    assert seen == {"__typename": "Entitlement", "plan": "free", "status": "ACTIVE", "graceUntil": None,
                    "subscriptionId": None, "limits": {"maxDocuments": 100}}


async def test_checkout_makes_one_customer_per_workspace_with_idempotent_writes(billing):
    account = await signed_up(billing)
    workspace, token = account["user"]["workspaces"][0]["id"], account["accessToken"]
    first = (await graphql(billing, CHECKOUT, w=workspace, p="pro", token=token))["data"]["startCheckout"]
    again = (await graphql(billing, CHECKOUT, w=workspace, p="pro", token=token))["data"]["startCheckout"]
    assert first["url"].startswith("https://checkout.stripe.com/") and again == first  # same key → replayed
    team = (await graphql(billing, CHECKOUT, w=workspace, p="team", token=token))["data"]["startCheckout"]
    assert team["url"] != first["url"]
    mine = [c for c in billing.fake.customers.values() if c["metadata"].get("workspace_id") == workspace]
    assert len(mine) == 1
    session = billing.fake.checkout_sessions[-1]
    assert session["client_reference_id"] == workspace and session["mode"] == "subscription"
    assert session["subscription_data"]["metadata"] == {"workspace_id": workspace, "plan": "team"}
    assert session["line_items"] == [{"price": "price_team", "quantity": "1"}]
    portal = (await graphql(billing, PORTAL, w=workspace, token=token))["data"]["openBillingPortal"]
    assert portal["url"].startswith("https://billing.stripe.com/")
    assert billing.fake.portal_sessions[-1]["customer"] == mine[0]["id"]


async def test_checkout_input_errors_and_access(billing, client):
    account, other = await signed_up(billing), await signed_up(billing)
    workspace, token = account["user"]["workspaces"][0]["id"], account["accessToken"]
    unknown = (await graphql(billing, CHECKOUT, w=workspace, p="platinum", token=token))["data"]["startCheckout"]
    assert unknown["__typename"] == "InvalidInputError" and "plans: free, pro, team" in unknown["message"]
    free = (await graphql(billing, CHECKOUT, w=workspace, p="free", token=token))["data"]["startCheckout"]
    assert free["__typename"] == "InvalidInputError"
    denied = await graphql(billing, CHECKOUT, w=workspace, p="pro", token=other["accessToken"])
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert billing.fake.customers == {}  # nothing reached Stripe
    unconfigured = await signed_up(client)  # the default app: no Stripe key
    answer = (await graphql(client, CHECKOUT, w=unconfigured["user"]["workspaces"][0]["id"], p="pro",
                            token=unconfigured["accessToken"]))["data"]["startCheckout"]
    assert answer == {"__typename": "InvalidInputError", "code": "invalid_input",
                      "message": "the pro plan has no Stripe price configured"}


async def test_stripe_down_is_a_typed_unavailable_error(billing):
    account = await signed_up(billing)
    billing.fake.api_key = "sk_test_rotated"  # Stripe now refuses Keel's key
    answer = (await graphql(billing, CHECKOUT, w=account["user"]["workspaces"][0]["id"], p="pro",
                            token=account["accessToken"]))["data"]["startCheckout"]
    assert answer["__typename"] == "UnavailableError" and answer["code"] == "payment_provider_unavailable"


async def test_subscription_lifecycle_payment_failure_grace_and_cancellation(billing):
    account, workspace, subscription = await subscribed(billing)
    token, now = account["accessToken"], int(time.time())
    assert (await entitlement(billing, token, workspace))["plan"] == "pro"
    invoice = {"id": "in_1", "object": "invoice", "customer": subscription["customer"], "status": "open",
               "parent": {"subscription_details": {"subscription": subscription["id"]}}}
    await deliver(billing, event(evt(), "invoice.payment_failed", invoice, now + 1))
    grace = await entitlement(billing, token, workspace)
    assert grace["plan"] == "pro" and grace["status"] == "GRACE" and grace["graceUntil"]
    await deliver(billing, event(evt(), "invoice.paid", dict(invoice, status="paid"), now + 2))
    assert (await entitlement(billing, token, workspace))["status"] == "ACTIVE"
    deleted = dict(subscription, status="canceled")
    await deliver(billing, event(evt(), "customer.subscription.deleted", deleted, now + 3))
    assert (await entitlement(billing, token, workspace))["plan"] == "free"


async def test_grace_runs_out_into_the_free_plan(billing):
    account, workspace, subscription = await subscribed(billing)
    past_due = dict(subscription, status="past_due")
    await deliver(billing, event(evt(), "customer.subscription.updated", past_due, int(time.time()) + 1))
    assert (await entitlement(billing, account["accessToken"], workspace))["status"] == "GRACE"
    async with billing.container.engine().begin() as connection:  # three days pass
        await connection.execute(text("UPDATE entitlements SET grace_until = now() - interval '1 second' "
                                      "WHERE workspace_id = :w"), {"w": workspace})
    after = await entitlement(billing, account["accessToken"], workspace)
    assert (after["plan"], after["status"]) == ("free", "ACTIVE")


async def test_duplicate_deliveries_change_state_once_also_ten_at_once(billing, client):
    admin = await signed_up_admin(client, billing.container)
    account, workspace, subscription = await subscribed(billing)
    upgrade = event(evt(), "customer.subscription.updated", dict(subscription, items=subscription_object(
        subscription["id"], subscription["customer"], "price_team", "active", workspace)["items"]),
        int(time.time()) + 5)
    answers = await asyncio.gather(*(deliver(billing, upgrade) for _ in range(10)))
    outcomes = sorted(answer.json()["outcome"] for answer in answers)
    assert [a.status_code for a in answers] == [200] * 10 and outcomes == ["duplicate"] * 9 + ["processed"]
    again = await deliver(billing, upgrade)
    assert again.json()["outcome"] == "duplicate"
    overview = (await graphql(billing, OVERVIEW, w=workspace, token=admin["accessToken"]))["data"]["billingOverview"]
    assert overview["entitlement"] == {"plan": "team", "status": "ACTIVE"}
    assert [change["after"]["plan"] for change in overview["history"]] == ["team", "pro"]  # newest first, once each
    events = (await graphql(billing, EVENTS, s="PROCESSED", token=admin["accessToken"]))["data"]["webhookEvents"]
    upgrade_id = json.loads(upgrade)["id"]
    assert [e["attempts"] for e in events["events"] if e["id"] == upgrade_id] == [1]


async def test_out_of_order_updates_end_in_the_newest_state(billing):
    account, workspace, subscription = await subscribed(billing)
    token, now = account["accessToken"], int(time.time())
    team = subscription_object(subscription["id"], subscription["customer"], "price_team", "active", workspace)
    older_pro = dict(subscription, status="past_due")
    await deliver(billing, event(evt(), "customer.subscription.updated", team, now + 20))
    stale = await deliver(billing, event(evt(), "customer.subscription.updated", older_pro, now + 10))
    assert stale.json()["outcome"] == "processed"  # acknowledged, but older than what Keel knows
    seen = await entitlement(billing, token, workspace)
    assert (seen["plan"], seen["status"]) == ("team", "ACTIVE")
    await deliver(billing, event(evt(), "customer.subscription.deleted", dict(team, status="canceled"), now + 30))
    await deliver(billing, event(evt(), "customer.subscription.updated", team, now + 25))  # late, pre-cancel
    assert (await entitlement(billing, token, workspace))["plan"] == "free"


@pytest.mark.parametrize("case", ["forged", "wrong_secret", "stale", "missing", "malformed_json", "not_an_event"])
async def test_bad_deliveries_are_rejected_and_nothing_is_stored(billing, case):
    event_id, now = evt(), int(time.time())
    payload = event(event_id, "customer.subscription.created", {"id": "sub_x", "status": "active"}, now)
    signature = None
    secret, timestamp = SECRET, None
    if case == "forged":
        signature = sign(payload, SECRET).replace("v1=", "v1=0")[:-1]
    elif case == "wrong_secret":
        secret = "whsec_someone_else"
    elif case == "stale":
        timestamp = now - 3600
    elif case == "missing":
        signature = ""
    elif case == "malformed_json":
        payload = payload[:-5] + b"{{"
    elif case == "not_an_event":
        payload = json.dumps({"id": event_id, "type": "x", "created": now, "data": "nope"}).encode()
    answer = await deliver(billing, payload, secret=secret, timestamp=timestamp, signature=signature)
    assert answer.status_code == 400 and answer.json()["error"]
    assert await stored_events(billing, event_id) == 0


async def test_a_handler_failing_midway_leaves_nothing_and_the_redelivery_applies(billing, client):
    admin = await signed_up_admin(client, billing.container)
    account, workspace, subscription = await subscribed(billing)
    event_id = evt()
    team = subscription_object(subscription["id"], subscription["customer"], "price_team", "active", workspace)
    payload = event(event_id, "customer.subscription.updated", team, int(time.time()) + 5)
    # The fault is in the database, after the subscription row is written: the history insert fails.
    async with billing.container.engine().begin() as connection:
        await connection.execute(text(
            "CREATE OR REPLACE FUNCTION keel_test_fail() RETURNS trigger AS $$ BEGIN "
            f"IF NEW.cause = 'event:{event_id}' THEN RAISE EXCEPTION 'disk full (test)'; END IF; "
            "RETURN NEW; END $$ LANGUAGE plpgsql"))
        await connection.execute(text("CREATE TRIGGER keel_test_fail BEFORE INSERT ON entitlement_history "
                                      "FOR EACH ROW EXECUTE FUNCTION keel_test_fail()"))
    try:
        failed = await deliver(billing, payload)
        assert failed.status_code == 500
        overview = (await graphql(billing, OVERVIEW, w=workspace, token=admin["accessToken"]))["data"]
        state = overview["billingOverview"]
        assert state["entitlement"]["plan"] == "pro"
        assert [s["priceId"] for s in state["subscriptions"]] == ["price_pro"]  # the subscription write rolled back
        events = (await graphql(billing, EVENTS, s="FAILED", token=admin["accessToken"]))["data"]["webhookEvents"]
        failure = next(e for e in events["events"] if e["id"] == event_id)
        assert failure["attempts"] == 1 and "disk full (test)" in failure["lastError"]
    finally:
        async with billing.container.engine().begin() as connection:
            await connection.execute(text("DROP TRIGGER keel_test_fail ON entitlement_history"))
    retried = await deliver(billing, payload)
    assert retried.status_code == 200 and retried.json()["outcome"] == "processed"
    assert (await entitlement(billing, account["accessToken"], workspace))["plan"] == "team"
    events = (await graphql(billing, EVENTS, s="PROCESSED", token=admin["accessToken"]))["data"]["webhookEvents"]
    assert [(e["attempts"], e["lastError"]) for e in events["events"] if e["id"] == event_id] == [(2, None)]


async def test_unknown_events_are_acknowledged_and_ignored(billing, client):
    admin = await signed_up_admin(client, billing.container)
    event_id = evt()
    answer = await deliver(billing, event(event_id, "charge.refunded", {"id": "ch_1", "object": "charge"},
                                          int(time.time())))
    assert answer.status_code == 200 and answer.json() == {"id": event_id, "outcome": "ignored"}
    events = (await graphql(billing, EVENTS, s="IGNORED", token=admin["accessToken"]))["data"]["webhookEvents"]
    assert event_id in [e["id"] for e in events["events"]]


async def test_customer_deleted_ends_its_subscriptions(billing):
    account, workspace, subscription = await subscribed(billing)
    customer = {"id": subscription["customer"], "object": "customer", "deleted": True}
    await deliver(billing, event(evt(), "customer.deleted", customer, int(time.time()) + 5))
    assert (await entitlement(billing, account["accessToken"], workspace))["plan"] == "free"


async def test_webhooks_off_without_a_secret(client):
    answer = await deliver(client, event(evt(), "charge.refunded", {"id": "ch_1"}, int(time.time())))
    assert answer.status_code == 503


async def test_admin_views_are_admin_only(billing):
    account = await signed_up(billing)
    workspace = account["user"]["workspaces"][0]["id"]
    for query, variables in ((OVERVIEW, {"w": workspace}), (EVENTS, {}),
                             ("{ reconciliationRepairs { __typename } }", {}),
                             ("mutation { reconcileBilling { __typename } }", {})):
        denied = await graphql(billing, query, token=account["accessToken"], **variables)
        assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN", query


async def test_a_plan_change_takes_effect_on_the_next_upload(billing):
    account = await signed_up(billing)
    workspace, token = account["user"]["workspaces"][0]["id"], account["accessToken"]
    # The built-in free plan allows 100 documents: fill the workspace up to it directly.
    async with billing.container.engine().begin() as connection:
        await connection.execute(text(
            "INSERT INTO documents (id, workspace_id, title, content_type, content_hash, byte_size, status, "
            "metadata, created_at, updated_at) SELECT gen_random_uuid(), :w, 'd' || n, 'text/plain', md5(n::text), "
            "10, 'ready', '{}', now(), now() FROM generate_series(1, 100) n"), {"w": workspace})
    upload = "mutation($w: ID!, $f: Upload!) { uploadDocument(workspaceId: $w, file: $f) { __typename " \
             "... on QuotaExceededError { limit message } } }"
    one_more = {"f": ("a.txt", b"one more", "text/plain")}
    refused = await graphql_upload(billing, upload, one_more, token=token, w=workspace)
    assert refused["data"]["uploadDocument"]["__typename"] == "QuotaExceededError"
    assert refused["data"]["uploadDocument"]["limit"] == "max_documents"
    owner = await billing.container.authenticate().execute(token)
    await billing.container.start_checkout().execute(owner, uuid.UUID(workspace), "pro")
    customer = billing.fake.checkout_sessions[-1]["customer"]
    pro = subscription_object(f"sub_{uuid.uuid4().hex[:12]}", customer, "price_pro", "active", workspace)
    await deliver(billing, event(evt(), "customer.subscription.created", pro, int(time.time())))
    accepted = await graphql_upload(billing, upload, one_more, token=token, w=workspace)
    assert accepted["data"]["uploadDocument"]["__typename"] == "UploadedDocuments"
