"""Rate limits: cost-weighted quotas per address, user, API key and workspace (its plan's), a process
quota, shared by every API process through Postgres or Redis; typed refusals with the retry time, 429 +
Retry-After over HTTP and the RateLimit fields on every answer."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from httpx_ws import WebSocketDisconnect, aconnect_ws
from sqlalchemy import text

from tests.conftest import asgi_client, keel_app, keel_serve, signed_up, ws_transport

PLANS = "{ plans { name } }"
SEARCH = """query($w: ID!) { search(workspaceId: $w, query: "anything", mode: KEYWORD, k: 3) {
  __typename } }"""
DOCUMENTS = "query($w: ID!) { documents(workspaceId: $w) { __typename } }"


def _code(body: dict) -> str | None:
    return body["errors"][0]["extensions"]["code"] if body.get("errors") else None


async def test_an_anonymous_caller_past_its_quota_is_refused_with_when_to_retry(settings):
    async with keel_app(settings, rate_anonymous_per_minute=5) as app, asgi_client(app) as client:
        answers = [await client.post("/graphql", json={"query": PLANS}) for _ in range(6)]
    first, refused = answers[0], answers[-1]
    assert first.status_code == 200 and first.headers["RateLimit-Policy"] == '"address";q=5;w=60'
    assert first.headers["RateLimit"].startswith('"address";r=4;t=')
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    error = refused.json()["errors"][0]
    assert error["extensions"]["code"] == "RATE_LIMITED" and 1 <= error["extensions"]["retryAfterSeconds"] <= 12
    assert refused.headers["Retry-After"] == str(error["extensions"]["retryAfterSeconds"])
    assert refused.headers["RateLimit"].startswith('"address";r=0;')


async def test_operations_cost_what_they_are_configured_to(settings):
    async with keel_app(settings, rate_user_per_minute=60) as app, asgi_client(app) as client:
        me = await signed_up(client)
        token, workspace = me["accessToken"], me["user"]["workspaces"][0]["id"]
        searches = [await graphql_status(client, SEARCH, token, w=workspace) for _ in range(13)]
        await asyncio.sleep(1.2)  # one unit a second comes back: enough for `me` (1), not for a search (5)
        cheap, dear = await graphql_status(client, "{ me { id } }", token), await graphql_status(
            client, SEARCH, token, w=workspace)
    # 60 units a minute: 12 searches at 5 units each, then the 13th is refused
    assert [code for code, _ in searches] == [None] * 12 + ["RATE_LIMITED"]
    assert cheap[0] is None and dear[0] == "RATE_LIMITED"


async def graphql_status(client, query, token, **variables) -> tuple[str | None, int]:
    response = await client.post("/graphql", json={"query": query, "variables": variables},
                                 headers={"Authorization": f"Bearer {token}"})
    return _code(response.json()), response.status_code


async def test_a_workspace_spends_its_plans_quota_and_strangers_cannot_spend_it(settings, tmp_path):
    plans = [{"name": "free", "limits": {"daily_tokens": 1000, "soft_cap_tokens": 900, "max_documents": 10,
                                         "max_storage_bytes": 10**6, "seats": 3, "models": ["offline"],
                                         "cheaper_model": "offline", "requests_per_minute": 4}}]
    (tmp_path / "plans.json").write_text(json.dumps(plans))
    async with keel_app(settings, plans_file=tmp_path / "plans.json") as app, asgi_client(app) as client:
        owner, stranger = await signed_up(client), await signed_up(client)
        workspace = owner["user"]["workspaces"][0]["id"]
        for _ in range(10):  # refused as strangers: the workspace's quota is not spent
            assert (await graphql_status(client, DOCUMENTS, stranger["accessToken"], w=workspace))[0] == "FORBIDDEN"
        codes = [(await graphql_status(client, DOCUMENTS, owner["accessToken"], w=workspace))[0] for _ in range(5)]
    assert codes == [None] * 4 + ["RATE_LIMITED"]


async def test_the_process_quota_sheds_load_on_rest_routes_but_webhooks_skip_the_address_quota(settings):
    async with keel_app(settings, rate_process_per_second=3, rate_anonymous_per_minute=1) as app, \
            asgi_client(app) as client:
        statuses = [(await client.get("/healthz")).status_code for _ in range(4)]
        assert statuses[:3] == [200] * 3 and statuses[3] == 429
        await asyncio.sleep(1.1)
        # one anonymous unit a minute would refuse the second webhook if the address counted
        hooks = [(await client.post("/webhooks/stripe", content=b"{}")).status_code for _ in range(2)]
        assert 429 not in hooks


async def test_websockets_spend_the_quota_and_one_caller_holds_a_bounded_number(settings):
    async with keel_app(settings, ws_max_per_caller=2) as app:
        me = None
        async with asgi_client(app) as client:
            me = await signed_up(client)
        transport = ws_transport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://keel.test") as http:
            init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {me['accessToken']}"}}
            async with aconnect_ws("/graphql", http, subprotocols=["graphql-transport-ws"]) as one, \
                    aconnect_ws("/graphql", http, subprotocols=["graphql-transport-ws"]) as two, \
                    aconnect_ws("/graphql", http, subprotocols=["graphql-transport-ws"]) as three:
                for ws in (one, two):
                    await ws.send_json(init)
                    assert (await ws.receive_json())["type"] == "connection_ack"
                await three.send_json(init)
                with pytest.raises(WebSocketDisconnect) as closed:
                    await three.receive_json()
                assert closed.value.code == 4429
    async with keel_app(settings, rate_anonymous_per_minute=3) as app:
        transport = ws_transport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://keel.test") as http, \
                aconnect_ws("/graphql", http, subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send_json({"type": "connection_init"})
            assert (await ws.receive_json())["type"] == "connection_ack"  # 1 unit
            for n in range(3):  # 1 unit each: the third is past the quota
                await ws.send_json({"id": str(n), "type": "subscribe", "payload": {"query": PLANS}})
            answers = [await ws.receive_json() for _ in range(5)]
            refused = [a["payload"] for a in answers if a["type"] == "error"]
            assert len(refused) == 1 and refused[0][0]["extensions"]["code"] == "RATE_LIMITED"


def _admitted_across(bases: list[str], requests: int) -> tuple[int, float]:
    async def run() -> tuple[int, float]:
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=60) as http:
            answers = await asyncio.gather(*(http.post(f"{bases[n % len(bases)]}/graphql", json={"query": PLANS})
                                             for n in range(requests)))
        assert {a.status_code for a in answers} <= {200, 429}
        return sum(a.status_code == 200 for a in answers), time.monotonic() - started

    return asyncio.run(run())


@pytest.mark.slow
@pytest.mark.parametrize("store", ["postgres", "redis"])
def test_two_api_processes_admit_at_most_the_limit_together(store, test_env, request, settings):
    env = {**test_env, "KEEL_RATE_ANONYMOUS_PER_MINUTE": "30", "KEEL_RATE_PROCESS_PER_SECOND": "0"}
    if store == "redis":
        env["KEEL_REDIS_URL"] = request.getfixturevalue("redis_url")
    else:
        asyncio.run(_forget_address_quota(settings))
    with keel_serve(env) as (first, _), keel_serve(env) as (second, _):
        admitted, elapsed = _admitted_across([first, second], 120)
    refilled = int(elapsed / 2)  # 30 a minute: one unit comes back every 2 s
    print(f"{store}: {admitted} of 120 admitted in {elapsed:.2f} s (limit 30, +{refilled} refilled)")
    assert 30 <= admitted <= 30 + refilled, (admitted, elapsed)


async def _forget_address_quota(settings) -> None:
    from src.container import build_container, shutdown

    services = build_container(settings)
    async with services.engine().begin() as connection:
        await connection.execute(text("DELETE FROM rate_limits WHERE key = 'ip:127.0.0.1'"))
    await shutdown(services)
