"""Property: whatever order Stripe delivers subscription events in, with duplicates, the entitlement ends as
the newest state of each subscription implies. Runs the real webhook use case on the real database."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from src.container import build_container, shutdown
from src.ports.billing import StripeEvent
from src.ports.identity import Workspace
from tests.fakes.stripe_api import subscription_object

PRICES = {"price_pro": "pro", "price_team": "team"}
RANK = {"free": 0, "pro": 1, "team": 2}
LIVE = {"active", "trialing", "past_due"}
NOT_FINAL = ["incomplete", "trialing", "active", "past_due", "unpaid"]


@dataclass(frozen=True)
class State:
    status: str
    price: str


def lifecycle() -> st.SearchStrategy[list[State]]:
    """1-4 states of one subscription; only the last may be canceled (Stripe never revives one)."""
    middle = st.lists(st.builds(State, st.sampled_from(NOT_FINAL), st.sampled_from(list(PRICES))), min_size=1,
                      max_size=4)
    return st.tuples(middle, st.booleans()).map(
        lambda pair: pair[0] + [State("canceled", pair[0][-1].price)] if pair[1] else pair[0])


@st.composite
def deliveries(draw):
    """(events in delivery order, expected plan, expected grace)."""
    subscriptions = draw(st.lists(lifecycle(), min_size=1, max_size=3))
    clock, events, newest = 1_700_000_000, [], []
    for states in subscriptions:
        sub_id = f"sub_{uuid.uuid4().hex[:14]}"
        for index, state in enumerate(states):
            clock += 10
            kind = "created" if index == 0 else "deleted" if state.status == "canceled" else "updated"
            events.append((f"evt_{uuid.uuid4().hex[:16]}", f"customer.subscription.{kind}", sub_id, state, clock))
        newest.append((states[-1], clock))
    duplicated = events + draw(st.lists(st.sampled_from(events), max_size=6))
    order = draw(st.permutations(duplicated))
    live = [(RANK[PRICES[state.price]], created, state) for state, created in newest if state.status in LIVE]
    if not live:
        return order, "free", False
    _, _, best = max(live, key=lambda item: (item[0], item[1]))
    return order, PRICES[best.price], best.status == "past_due"


@pytest.fixture(scope="module")
def runtime(settings):
    """One loop and container for every example (hypothesis runs the test body many times)."""
    loop = asyncio.new_event_loop()
    container = build_container(settings.model_copy(update={"stripe_prices": "pro=price_pro,team=price_team"}))
    yield loop, container
    loop.run_until_complete(shutdown(container))
    loop.close()


async def run_case(container, order, expected_plan: str, expected_grace: bool) -> None:
    workspace = Workspace(uuid.uuid4(), "property", datetime.now(UTC))
    async with container.identity_uow() as uow:
        await uow.workspaces.add(workspace)
        await uow.commit()
    handle = container.handle_stripe_event()
    for event_id, kind, sub_id, state, created in order:
        data = subscription_object(sub_id, "cus_property", state.price, state.status, str(workspace.id))
        await handle.execute(StripeEvent(event_id, kind, created, data))
    entitlement = await container.entitlements().entitlement(workspace.id)
    assert (entitlement.plan, entitlement.status.value) == (expected_plan, "grace" if expected_grace else "active")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=deliveries())
def test_final_entitlement_is_implied_by_the_newest_states(runtime, case):
    loop, container = runtime
    order, expected_plan, expected_grace = case
    loop.run_until_complete(run_case(container, order, expected_plan, expected_grace))
