"""Reconciliation against a fake Stripe (real SDK): drift repaired and recorded, pagination and 429s, one run
at a time, `keel billing reconcile`, and the nightly schedule fired by a real worker. Each test has its own
database: reconciliation looks at every workspace."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import pytest
from dependency_injector import providers
from sqlalchemy import text

from src.container import build_container, shutdown
from src.core.billing.reconcile import RECONCILE_JOB
from src.evaluation.retrieval import CollectedJobs
from src.ports.billing import StripeEvent
from src.ports.identity import Principal, Role, Workspace
from tests.conftest import fresh_database, run_keel, start_worker, stop_worker

pytestmark = pytest.mark.slow

ADMIN = Principal(uuid.uuid4(), Role.ADMIN)  # an operator, as the use cases see one


@pytest.fixture
def own_db(request, settings):
    return fresh_database(settings, request.node.name.removeprefix("test_")[:20])


def configured(settings, fake):
    return settings.model_copy(update={"stripe_api_key": fake.api_key, "stripe_api_base": fake.url,
                                       "stripe_prices": "pro=price_pro,team=price_team"})


def env_for(test_env, settings, fake, **extra) -> dict[str, str]:
    return {**test_env, "KEEL_DB_NAME": settings.db_name, "KEEL_STRIPE_API_KEY": fake.api_key,
            "KEEL_STRIPE_API_BASE": fake.url, "KEEL_STRIPE_PRICES": "pro=price_pro,team=price_team", **extra}


async def new_workspace(container) -> uuid.UUID:
    workspace = Workspace(uuid.uuid4(), "billing", datetime.now(UTC))
    async with container.identity_uow() as uow:
        await uow.workspaces.add(workspace)
        await uow.commit()
    return workspace.id


async def told_by_webhook(container, subscription: dict) -> None:
    """Keel learns of the subscription the usual way: a verified event handed to the billing core."""
    await container.handle_stripe_event().execute(StripeEvent(
        f"evt_{uuid.uuid4().hex[:16]}", "customer.subscription.created", int(time.time()), subscription))


async def plan_of(container, workspace_id) -> str:
    return (await container.entitlements().entitlement(workspace_id)).plan


async def drifted_world(container, fake) -> dict[str, uuid.UUID]:
    """Four workspaces whose local state and Stripe's disagree in each way that matters, plus noise."""
    names = {}
    for name in ("canceled_in_stripe", "never_told", "in_sync", "gone_from_stripe"):
        names[name] = await new_workspace(container)
    canceled = fake.add_subscription("cus_a", "price_pro", workspace_id=str(names["canceled_in_stripe"]))
    await told_by_webhook(container, dict(canceled))
    canceled["status"] = "canceled"  # the cancellation webhook was lost
    fake.add_subscription("cus_b", "price_team", workspace_id=str(names["never_told"]))
    in_sync = fake.add_subscription("cus_c", "price_pro", workspace_id=str(names["in_sync"]))
    await told_by_webhook(container, dict(in_sync))
    gone = fake.add_subscription("cus_d", "price_pro", workspace_id=str(names["gone_from_stripe"]))
    await told_by_webhook(container, dict(gone))
    del fake.subscriptions[gone["id"]]
    for index in range(230):  # other people's subscriptions: three pages of 100
        fake.add_subscription(f"cus_other{index}", "price_pro", status="canceled")
    return names


async def test_reconciliation_repairs_drift_and_records_each_repair(own_db, fake_stripe):
    container = build_container(configured(own_db, fake_stripe))
    try:
        names = await drifted_world(container, fake_stripe)
        assert [await plan_of(container, names[n]) for n in names] == ["pro", "free", "pro", "pro"]
        fake_stripe.rate_limit_next(2, retry_after="0")
        report = await container.reconcile_billing().execute()
        assert report.ran and report.subscriptions_seen == 233 and report.repaired == 3
        assert [await plan_of(container, names[n]) for n in names] == ["free", "team", "pro", "free"]
        listed = [path for method, path in fake_stripe.requests if path == "/v1/subscriptions"]
        assert len(listed) == 3 + 2  # three pages, two of them first refused with 429
        repairs = await container.list_billing_repairs().execute(ADMIN, 50)
        by_workspace = {repair.workspace_id: repair for repair in repairs}
        assert set(by_workspace) == {names["canceled_in_stripe"], names["never_told"], names["gone_from_stripe"]}
        assert {r.run_id for r in repairs} == {report.run_id}
        never_told = by_workspace[names["never_told"]]
        assert never_told.before is None and never_told.after["plan"] == "team"
        assert by_workspace[names["canceled_in_stripe"]].before["plan"] == "pro"
        overview = await container.billing_overview().execute(ADMIN, names["canceled_in_stripe"])
        assert overview.history[0].cause == f"reconciliation:{report.run_id}"

        again = await container.reconcile_billing().execute()
        assert again.ran and again.repaired == 0
        first, second = await asyncio.gather(container.reconcile_billing().execute(),
                                             container.reconcile_billing().execute())
        assert sorted([first.ran, second.ran]) == [False, True]  # the advisory lock lets one through
    finally:
        await shutdown(container)


async def test_a_stale_webhook_after_reconciliation_does_not_undo_it(own_db, fake_stripe):
    container = build_container(configured(own_db, fake_stripe))
    try:
        workspace = await new_workspace(container)
        subscription = fake_stripe.add_subscription("cus_x", "price_pro", workspace_id=str(workspace))
        old_state = dict(subscription)
        subscription["status"] = "canceled"
        await container.reconcile_billing().execute()
        late = StripeEvent("evt_late_" + uuid.uuid4().hex[:8], "customer.subscription.updated",
                           int(time.time()) - 60, old_state)
        await container.handle_stripe_event().execute(late)
        assert await plan_of(container, workspace) == "free"
    finally:
        await shutdown(container)


async def test_keel_billing_reconcile_from_the_console(own_db, fake_stripe, test_env):
    container = build_container(configured(own_db, fake_stripe))
    try:
        names = await drifted_world(container, fake_stripe)
    finally:
        await shutdown(container)
    done = await asyncio.to_thread(run_keel, "billing", "reconcile", env=env_for(test_env, own_db, fake_stripe))
    assert done.returncode == 0, done.stderr
    assert "233 subscriptions seen, 3 workspaces repaired" in done.stderr
    container = build_container(configured(own_db, fake_stripe))
    try:
        assert await plan_of(container, names["never_told"]) == "team"
    finally:
        await shutdown(container)


async def test_due_schedules_are_enqueued_once_among_concurrent_workers(own_db):
    container = build_container(own_db.model_copy(update={"keyword_index_check_minutes": 0}))  # reconcile only
    collected = CollectedJobs()
    container.jobs.override(providers.Object(collected))
    try:
        assert await container.enqueue_due_jobs().execute() == []  # first sight: stored for the next 03:00
        async with container.engine().begin() as connection:
            next_run = (await connection.execute(text(
                "SELECT next_run_at FROM job_schedules WHERE job_name = :n"), {"n": RECONCILE_JOB})).scalar_one()
            assert (next_run.hour, next_run.minute) == (3, 0) and next_run > datetime.now(UTC)
            await connection.execute(text("UPDATE job_schedules SET next_run_at = now() - interval '1 minute' "
                                          "WHERE job_name = :n"), {"n": RECONCILE_JOB})
        runs = await asyncio.gather(*(container.enqueue_due_jobs().execute() for _ in range(6)))
        assert sorted(map(len, runs)) == [0, 0, 0, 0, 0, 1]
        assert [job.name for job in collected.jobs] == [RECONCILE_JOB]
    finally:
        container.jobs.reset_override()
        await shutdown(container)


async def test_the_nightly_reconciliation_runs_in_a_real_worker(own_db, fake_stripe, test_env):
    container = build_container(configured(own_db, fake_stripe))
    worker = start_worker(env_for(test_env, own_db, fake_stripe, KEEL_SCHEDULE_CHECK_SECONDS="0.2"))
    try:
        workspace = await new_workspace(container)
        fake_stripe.add_subscription("cus_n", "price_team", workspace_id=str(workspace))

        async def scheduled() -> bool:
            async with container.engine().begin() as connection:
                moved = await connection.execute(text(
                    "UPDATE job_schedules SET next_run_at = now() - interval '1 second' "
                    "WHERE job_name = :n AND last_run_at IS NULL RETURNING 1"), {"n": RECONCILE_JOB})
                return moved.first() is not None

        async def until(predicate, timeout=60.0):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if await predicate():
                    return
                await asyncio.sleep(0.2)
            raise AssertionError("condition not met in time")

        await until(scheduled)  # the worker stored the schedule; now make tonight's run due
        await until(lambda: _is_team(container, workspace))
    finally:
        await asyncio.to_thread(stop_worker, worker)
        await shutdown(container)


async def _is_team(container, workspace) -> bool:
    return await plan_of(container, workspace) == "team"
