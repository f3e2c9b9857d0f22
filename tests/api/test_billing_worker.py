"""Stripe webhooks with KEEL_STRIPE_WEBHOOKS_APPLY=worker: the endpoint stores the verified event and answers
at once; a real Dramatiq worker applies it, once, in Stripe's order; a failing event is retried by later runs
up to its limit, and a redelivery from Stripe gives it another chance."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
from sqlalchemy import text

from src.container import build_container, shutdown
from src.core.billing.webhooks import MAX_ATTEMPTS
from src.main import create_app
from tests.api.test_billing import CHECKOUT, EVENTS, OVERVIEW, SECRET, deliver, entitlement, evt
from tests.conftest import asgi_client, graphql, signed_up, signed_up_admin, start_worker, stop_worker
from tests.fakes.stripe_api import event, subscription_object

WORKER_MODE = {"stripe_webhook_secret": SECRET, "stripe_prices": "pro=price_pro,team=price_team",
               "stripe_webhooks_apply": "worker"}


@pytest.fixture
async def accepting(settings, fake_stripe):
    """The app in worker mode (no worker yet: each test starts one, or runs the worker's use case itself)."""
    configured = settings.model_copy(update={**WORKER_MODE, "stripe_api_key": fake_stripe.api_key,
                                             "stripe_api_base": fake_stripe.url})
    container = build_container(configured)
    async with asgi_client(create_app(configured, container)) as client:
        client.container = container
        client.fake = fake_stripe
        yield client
    await shutdown(container)


async def checked_out(client) -> tuple[dict, str, str]:
    account = await signed_up(client)
    workspace = account["user"]["workspaces"][0]["id"]
    redirect = await graphql(client, CHECKOUT, w=workspace, p="pro", token=account["accessToken"])
    assert redirect["data"]["startCheckout"]["__typename"] == "BillingRedirect", redirect
    return account, workspace, client.fake.checkout_sessions[-1]["customer"]


async def statuses(client, ids: list[str]) -> dict[str, tuple[str, int]]:
    async with client.container.engine().connect() as connection:
        rows = await connection.execute(text("SELECT id, status, attempts FROM stripe_events WHERE id = ANY(:ids)"),
                                        {"ids": ids})
        return {row.id: (row.status, row.attempts) for row in rows}


async def test_events_are_answered_at_once_and_a_worker_applies_each_once_in_stripe_order(accepting, client,
                                                                                          test_env):
    admin = await signed_up_admin(client, accepting.container)
    account, workspace, customer = await checked_out(accepting)
    now = int(time.time())
    pro = subscription_object(f"sub_{uuid.uuid4().hex[:12]}", customer, "price_pro", "active", workspace)
    team = subscription_object(pro["id"], customer, "price_team", "active", workspace)
    created, upgrade, stale = (event(evt(), "customer.subscription.created", pro, now),
                               event(evt(), "customer.subscription.updated", team, now + 10),
                               event(evt(), "customer.subscription.updated", dict(pro, status="past_due"), now + 5))
    first = await deliver(accepting, created)
    assert first.status_code == 200 and first.json()["outcome"] == "accepted"
    copies = await asyncio.gather(*(deliver(accepting, upgrade) for _ in range(10)))
    assert sorted(answer.json()["outcome"] for answer in copies) == ["accepted"] + ["duplicate"] * 9
    assert (await deliver(accepting, stale)).json()["outcome"] == "accepted"  # arrives last, older than the upgrade
    ids = [json.loads(payload)["id"] for payload in (created, upgrade, stale)]
    assert {status for status, _ in (await statuses(accepting, ids)).values()} == {"received"}  # nothing applied yet
    worker = start_worker({**test_env, **{f"KEEL_{name.upper()}": value for name, value in WORKER_MODE.items()}})
    try:
        deadline = time.monotonic() + 60
        while set((await statuses(accepting, ids)).values()) != {("processed", 1)} and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    finally:
        stop_worker(worker)
    assert await statuses(accepting, ids) == {each: ("processed", 1) for each in ids}
    seen = await entitlement(accepting, account["accessToken"], workspace)
    assert (seen["plan"], seen["status"]) == ("team", "ACTIVE")
    overview = (await graphql(accepting, OVERVIEW, w=workspace, token=admin["accessToken"]))["data"]
    history = [(change["after"]["plan"], change["cause"]) for change in overview["billingOverview"]["history"]]
    # newest first, once each, in Stripe's order (created, the past_due one, the upgrade), not the arrival order
    assert history == [("team", f"event:{ids[1]}"), ("pro", f"event:{ids[2]}"), ("pro", f"event:{ids[0]}")]
    again = await deliver(accepting, upgrade)
    assert again.json()["outcome"] == "duplicate"


async def test_a_failing_event_is_retried_by_later_runs_up_to_its_limit_and_a_redelivery_revives_it(
        accepting, client):
    admin = await signed_up_admin(client, accepting.container)
    account, workspace, customer = await checked_out(accepting)
    event_id = evt()
    pro = subscription_object(f"sub_{uuid.uuid4().hex[:12]}", customer, "price_pro", "active", workspace)
    payload = event(event_id, "customer.subscription.created", pro, int(time.time()))
    healthy = event(evt(), "checkout.session.completed", {"id": "cs_1", "object": "checkout.session",
                                                          "customer": customer, "client_reference_id": workspace}, 1)
    apply = accepting.container.apply_received_stripe_events
    async with accepting.container.engine().begin() as connection:  # the history insert fails for this event
        await connection.execute(text(
            "CREATE OR REPLACE FUNCTION keel_test_fail() RETURNS trigger AS $$ BEGIN "
            f"IF NEW.cause = 'event:{event_id}' THEN RAISE EXCEPTION 'disk full (test)'; END IF; "
            "RETURN NEW; END $$ LANGUAGE plpgsql"))
        await connection.execute(text("CREATE TRIGGER keel_test_fail BEFORE INSERT ON entitlement_history "
                                      "FOR EACH ROW EXECUTE FUNCTION keel_test_fail()"))
    try:
        assert (await deliver(accepting, payload)).json()["outcome"] == "accepted"
        assert (await deliver(accepting, healthy)).json()["outcome"] == "accepted"
        assert await apply().execute() >= 1  # the healthy one, though it came after the failing one
        assert (await statuses(accepting, [event_id]))[event_id] == ("failed", 1)
        for _ in range(MAX_ATTEMPTS + 2):  # each later run tries it once more, up to the limit
            await apply().execute()
        assert (await statuses(accepting, [event_id]))[event_id] == ("failed", MAX_ATTEMPTS)
        events = (await graphql(accepting, EVENTS, s="FAILED", token=admin["accessToken"]))["data"]
        failure = next(e for e in events["webhookEvents"]["events"] if e["id"] == event_id)
        assert "disk full (test)" in failure["lastError"]
        assert (await entitlement(accepting, account["accessToken"], workspace))["plan"] == "free"
    finally:
        async with accepting.container.engine().begin() as connection:
            await connection.execute(text("DROP TRIGGER keel_test_fail ON entitlement_history"))
    await apply().execute()
    assert (await statuses(accepting, [event_id]))[event_id] == ("failed", MAX_ATTEMPTS)  # past its limit
    assert (await deliver(accepting, payload)).json()["outcome"] == "accepted"  # Stripe delivers it again
    assert await apply().execute() >= 1
    assert (await statuses(accepting, [event_id]))[event_id] == ("processed", MAX_ATTEMPTS + 1)
    assert (await entitlement(accepting, account["accessToken"], workspace))["plan"] == "pro"
