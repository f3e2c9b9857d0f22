"""10,000 websocket connections to `keel serve`, each cut off abruptly (the TCP connection aborted, no close
frame) in the middle of a live subscription — a document being watched, or every 20th a chat answer being
streamed: the server's memory comes back to where it was after a warm-up, and no socket stays counted as
open. Prints the memory before and after and how long the churn took.

KEEL_SOCKETS sets the count (default 10,000)."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid

import httpx
import psutil
import pytest
import websockets

from tests.api.test_metrics import samples, value
from tests.conftest import NO_RATE_LIMITS, keel_serve
from tests.fakes.openai_api import FakeOpenAI

pytestmark = [pytest.mark.slow, pytest.mark.faults]
SOCKETS = int(os.environ.get("KEEL_SOCKETS", "10000"))
AT_ONCE = 100
ACCOUNTS = 100  # each workspace's plan allows 1,200 requests a minute: the churn spreads over several
WATCH = "subscription($w: ID!, $id: ID!) { document(workspaceId: $w, id: $id) { __typename } }"
CHAT = "subscription($w: ID!, $q: String!) { chat(workspaceId: $w, content: $q) { kind text } }"
SIGN_UP = """mutation($e: String!) { signUp(email: $e, password: "a long enough pass phrase") {
  ... on AuthPayload { accessToken user { workspaces { id } } } } }"""
UPLOAD = """mutation($w: ID!, $file: Upload!) { uploadDocument(workspaceId: $w, file: $file) {
  ... on UploadedDocuments { documents { document { id } } } } }"""


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 1e6


async def cut_off(url: str, token: str, query: str, variables: dict, messages: int) -> str:
    """One socket: subscribe, read `messages` updates, then abort the connection."""
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"], open_timeout=30) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query,
                                                                              "variables": variables}}))
        for _ in range(messages):
            message = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if message["type"] != "next":
                return f"{message['type']}: {json.dumps(message.get('payload'))[:100]}"
        ws.transport.abort()  # no close frame, no FIN handshake: as a phone losing its network
    return "cut off mid-stream"


async def churn(url: str, accounts: list[tuple[str, str, str]], count: int) -> dict[str, int]:
    outcomes: dict[str, int] = {}
    gate = asyncio.Semaphore(AT_ONCE)

    async def one(number: int) -> None:
        token, workspace, document = accounts[number % len(accounts)]
        async with gate:
            if number % 20 == 0:
                call = cut_off(url, token, CHAT, {"w": workspace, "q": f"glaciers {number}?"}, messages=2)
            else:
                call = cut_off(url, token, WATCH, {"w": workspace, "id": document}, messages=1)
            try:
                outcome = await call
            except Exception as exc:  # counted: a refused or failed socket is an outcome too
                outcome = f"{type(exc).__name__}: {str(exc)[:80]}"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

    await asyncio.gather(*(one(number) for number in range(count)))
    return outcomes


async def account(http: httpx.AsyncClient) -> tuple[str, str, str]:
    """(token, workspace, a document that stays queued: no worker runs here, so watching it never ends)."""
    signed = (await http.post("/graphql", json={"query": SIGN_UP, "variables": {
        "e": f"churn-{uuid.uuid4().hex[:8]}@example.com"}})).json()["data"]["signUp"]
    token, workspace = signed["accessToken"], signed["user"]["workspaces"][0]["id"]
    operations = {"query": UPLOAD, "variables": {"w": workspace, "file": None}}
    uploaded = (await http.post("/graphql", headers={"Authorization": f"Bearer {token}"}, data={
        "operations": json.dumps(operations), "map": json.dumps({"0": ["variables.file"]})},
        files={"0": ("a.md", b"# Glaciers\n\nGlaciers carve fjords.", "text/markdown")})).json()
    return token, workspace, uploaded["data"]["uploadDocument"]["documents"][0]["document"]["id"]


async def settled(base: str, pid: int, seconds: float = 20) -> tuple[float, float]:
    """Waits until the server counts no open socket (or `seconds`); returns (open sockets, memory)."""
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        while True:
            open_now = value(samples((await http.get("/metrics")).text), "keel_websockets_open")
            if open_now == 0 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    await asyncio.sleep(2)
    return open_now, rss_mb(pid)


async def test_ten_thousand_sockets_cut_off_mid_stream_leave_no_memory_behind(test_env):
    fake = FakeOpenAI()
    fake.chat.token_delay = 0.05
    with fake.serve() as served:
        env = {**test_env, **{f"KEEL_{name.upper()}": str(v) for name, v in NO_RATE_LIMITS.items()},
               "KEEL_OPENAI_API_KEY": fake.api_key, "KEEL_OPENAI_BASE_URL": served.url + "/v1",
               "KEEL_CHAT_MODELS": "gpt-4o-mini,offline", "KEEL_WS_MAX_PER_CALLER": "10000"}
        with keel_serve(env) as (base, api):
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                accounts = [await account(http) for _ in range(ACCOUNTS)]
            url = base.replace("http://", "ws://") + "/graphql"

            warm_up = await churn(url, accounts, min(1000, SOCKETS // 10))
            _, baseline = await settled(base, api.pid)
            started = time.monotonic()
            outcomes = await churn(url, accounts, SOCKETS)
            took = time.monotonic() - started
            open_after, after = await settled(base, api.pid)
    print(f"\nwarm-up {warm_up}\n{SOCKETS} sockets in {took:.0f} s: {outcomes}\nserver memory {baseline:.0f} MB "
          f"after the warm-up, {after:.0f} MB after the churn ({after - baseline:+.1f} MB); open sockets left "
          f"{open_after:.0f}")
    assert outcomes == {"cut off mid-stream": SOCKETS}, outcomes
    assert open_after == 0
    assert after - baseline < 40, (baseline, after)  # a leak of 4 kB a socket (40 MB) fails this
