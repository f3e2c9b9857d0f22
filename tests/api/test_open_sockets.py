"""Sessions end everywhere, open websockets included: every `subscribe` authenticates again (an expired
token or ended session closes the socket with 4401), and a sign-out or key revocation closes the live
subscriptions of that session or key within seconds (4401 / 4403), on every API process."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import timedelta

import httpx
import pytest
from httpx_ws import WebSocketDisconnect, aconnect_ws

from src.main import create_app
from src.ports.identity import AccessClaims, Role
from tests.conftest import asgi_client, graphql, graphql_upload, keel_serve, signed_up, ws_transport

UPLOAD = """mutation($ws: ID!, $file: Upload!) { uploadDocument(workspaceId: $ws, file: $file) {
  ... on UploadedDocuments { documents { document { id } } } } }"""
WATCH = "subscription($w: ID!, $id: ID!) { document(workspaceId: $w, id: $id) { __typename } }"
KEY = """mutation($w: ID!) { createApiKey(workspaceId: $w, name: "watcher", scopes: [CONTENT_READ]) {
  ... on CreatedApiKey { secret apiKey { id } } } }"""
REVOKE = "mutation($id: ID!) { revokeApiKey(id: $id) { __typename } }"
SIGN_OUT = "mutation { signOut(everywhere: true) { __typename } }"


def _websockets(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=ws_transport(app), base_url="http://keel.test")


@contextlib.asynccontextmanager
async def _sweeping(app, container, settings):
    """What the app's lifespan runs: the sweep that closes sockets of ended sessions and revoked keys."""
    sweep = asyncio.create_task(app.state.sockets.watch(container.find_ended_credentials, settings.ws_recheck_seconds))
    try:
        yield
    finally:
        sweep.cancel()


async def _queued_document(client, account) -> tuple[str, str]:
    """A document no worker will ingest here: watching it stays open until the socket closes."""
    workspace = account["user"]["workspaces"][0]["id"]
    body = await graphql_upload(client, UPLOAD, {"file": ("a.txt", uuid.uuid4().hex.encode(), "text/plain")},
                                token=account["accessToken"], ws=workspace)
    return workspace, body["data"]["uploadDocument"]["documents"][0]["document"]["id"]


async def _closed_while_watching(http, credentials: dict, workspace: str, document: str, act,
                                 url: str = "/graphql") -> tuple[int, float]:
    """Opens a socket, starts a live subscription, runs `act`; returns the close code and seconds it took."""
    async with aconnect_ws(url, http, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send_json({"type": "connection_init", "payload": credentials})
        assert (await ws.receive_json())["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {
            "query": WATCH, "variables": {"w": workspace, "id": document}}})
        assert (await ws.receive_json())["type"] == "next"
        await act()
        started = asyncio.get_running_loop().time()
        with pytest.raises(WebSocketDisconnect) as closed:
            async with asyncio.timeout(20):
                while True:
                    await ws.receive_json()
        return closed.value.code, asyncio.get_running_loop().time() - started


async def test_signing_out_everywhere_closes_the_sessions_live_subscriptions(settings, container):
    app = create_app(settings, container)
    async with asgi_client(app) as client, _websockets(app) as http, _sweeping(app, container, settings):
        account = await signed_up(client)
        workspace, document = await _queued_document(client, account)

        async def sign_out():
            assert (await graphql(client, SIGN_OUT, token=account["accessToken"]))["data"]["signOut"]["__typename"] \
                == "Ok"

        code, seconds = await _closed_while_watching(http, {"Authorization": f"Bearer {account['accessToken']}"},
                                                     workspace, document, sign_out)
    assert code == 4401 and seconds < 2 * settings.ws_recheck_seconds + 2


async def test_revoking_a_key_closes_its_live_subscriptions(settings, container):
    app = create_app(settings, container)
    async with asgi_client(app) as client, _websockets(app) as http, _sweeping(app, container, settings):
        account = await signed_up(client)
        workspace, document = await _queued_document(client, account)
        created = (await graphql(client, KEY, w=workspace, token=account["accessToken"]))["data"]["createApiKey"]

        async def revoke():
            await graphql(client, REVOKE, id=created["apiKey"]["id"], token=account["accessToken"])

        code, _ = await _closed_while_watching(http, {"X-Api-Key": created["secret"]}, workspace, document, revoke)
    assert code == 4403


async def test_a_subscribe_after_the_token_expired_closes_the_socket(settings, container):
    app = create_app(settings, container)
    async with asgi_client(app) as client:
        account = await signed_up(client)
    me = await container.authenticate().execute(account["accessToken"])
    now = container.clock().now()
    # expired by the clock already, but inside the 5 s the codec allows for clock skew: valid 3 s more
    short = await container.token_codec().encode(AccessClaims(me.user_id, me.session_id, Role.USER,
                                                              now - timedelta(minutes=1), now - timedelta(seconds=2)))
    async with _websockets(app) as http, aconnect_ws("/graphql", http, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {short}"}})
        assert (await ws.receive_json())["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": "{ me { id } }"}})
        assert (await ws.receive_json())["payload"]["data"]["me"]["id"] == account["user"]["id"]
        await asyncio.sleep(3.5)
        await ws.send_json({"id": "2", "type": "subscribe", "payload": {"query": "{ me { id } }"}})
        messages = []
        with pytest.raises(WebSocketDisconnect) as closed:
            async with asyncio.timeout(15):
                while True:
                    messages.append(await ws.receive_json())
    assert closed.value.code == 4401 and "expired" in closed.value.reason
    assert not [m for m in messages if m.get("id") == "2" and m["type"] == "next"]


@pytest.mark.slow
async def test_a_sign_out_on_one_api_process_closes_sockets_on_another(test_env):
    with keel_serve(test_env) as (first, _), keel_serve(test_env) as (second, _):
        async with httpx.AsyncClient(base_url=second, timeout=30) as client, httpx.AsyncClient(timeout=30) as http:
            account = await signed_up(client)
            workspace, document = await _queued_document(client, account)

            async def sign_out_elsewhere():
                await graphql(client, SIGN_OUT, token=account["accessToken"])

            code, seconds = await _closed_while_watching(
                http, {"Authorization": f"Bearer {account['accessToken']}"}, workspace, document, sign_out_elsewhere,
                url=first.replace("http://", "ws://") + "/graphql")
    assert code == 4401 and seconds < 10
