"""Two `keel serve` processes and a worker sharing one database: an answer generated on one process is followed
live from the other (over the live feed, not the 2-second checkpoints), and a client that loses its socket
mid-answer and reconnects to the other process resumes from its offset without a gap or a repeated character.
Prints how far the follower on the other process lags a follower on the generating one."""

from __future__ import annotations

import asyncio
import json
import statistics
import time

import httpx
import pytest
import websockets

from tests.api.test_knowledge import upload, wait_until_settled
from tests.api.test_openai_api import account
from tests.conftest import keel_serve, start_worker, stop_worker
from tests.fakes.openai_api import FakeOpenAI

pytestmark = pytest.mark.slow
CHAT = """subscription($w: ID!, $q: String!) { chat(workspaceId: $w, content: $q) {
  kind messageId offset text message { status content } error { code } } }"""
STREAM = """subscription($w: ID!, $m: ID!, $o: Int!) { messageStream(workspaceId: $w, messageId: $m, offset: $o) {
  kind offset text message { status content } error { code } } }"""
MESSAGE = """query($w: ID!, $m: ID!) { message(workspaceId: $w, id: $m) { ... on Message { status content } } }"""
STOP = "mutation($w: ID!, $m: ID!) { stopAnswer(workspaceId: $w, messageId: $m) { __typename } }"
WORDS = 150


def slow_provider() -> FakeOpenAI:
    """Answers of 150 words at ~33 a second."""
    fake = FakeOpenAI()
    fake.chat.reply = " ".join(f"fjord{i}" for i in range(WORDS)) + "."
    fake.chat.token_delay = 0.03
    return fake


def provider_env(test_env: dict[str, str], fake: FakeOpenAI, url: str) -> dict[str, str]:
    return {**test_env, "KEEL_OPENAI_API_KEY": fake.api_key, "KEEL_OPENAI_BASE_URL": url + "/v1",
            "KEEL_RATE_ANONYMOUS_PER_MINUTE": "0", "KEEL_RATE_USER_PER_MINUTE": "0"}


class Reader:
    """One graphql-transport-ws socket with one subscription; every DELTA with its arrival time."""

    def __init__(self, base: str, token: str) -> None:
        self.url, self.token = base.replace("http://", "ws://") + "/graphql", token
        self.deltas: list[tuple[float, int, str]] = []  # (arrived at, offset, text)
        self.final: dict | None = None

    async def open(self, query: str, variables: dict) -> None:
        self.ws = await websockets.connect(self.url, subprotocols=["graphql-transport-ws"], open_timeout=30)
        await self.ws.send(json.dumps({"type": "connection_init",
                                       "payload": {"Authorization": f"Bearer {self.token}"}}))
        assert json.loads(await self.ws.recv())["type"] == "connection_ack"
        await self.ws.send(json.dumps({"id": "1", "type": "subscribe",
                                       "payload": {"query": query, "variables": variables}}))

    async def event(self) -> dict:
        message = json.loads(await asyncio.wait_for(self.ws.recv(), 30))
        assert message["type"] == "next", message
        event = next(iter(message["payload"]["data"].values()))
        assert not event.get("error"), event
        if event["kind"] == "DELTA":
            self.deltas.append((time.monotonic(), event["offset"], event["text"]))
        elif event["kind"] == "FINISHED":
            self.final = event["message"]
        return event

    async def to_the_end(self, close: bool = True) -> None:
        while self.final is None:
            await self.event()
        if close:
            await self.ws.close()

    def text(self, start: int = 0) -> str:
        """The text its deltas make, checking each continues the last exactly (no gap, nothing twice)."""
        text = ""
        for _, offset, piece in self.deltas:
            assert offset == start + len(text), (offset, start + len(text))
            text += piece
        return text

    def times(self) -> list[tuple[int, float]]:
        """(characters received, when) after each delta."""
        return [(offset + len(piece), at) for at, offset, piece in self.deltas]


class CheckpointReader:
    """What a follower on another process had before the live feed: the stored answer, read every `every`
    seconds (it grows at each checkpoint, every 2 s)."""

    def __init__(self, base: str, token: str, workspace: str, message: str, every: float = 0.05) -> None:
        self.base, self.token, self.variables, self.every = base, token, {"w": workspace, "m": message}, every
        self.seen: list[tuple[int, float]] = []

    async def to_the_end(self) -> None:
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as client:
            while True:
                answer = (await client.post("/graphql", headers={"Authorization": f"Bearer {self.token}"}, json={
                    "query": MESSAGE, "variables": self.variables})).json()["data"]["message"]
                if not self.seen or len(answer["content"]) > self.seen[-1][0]:
                    self.seen.append((len(answer["content"]), time.monotonic()))
                if answer["status"] != "STREAMING":
                    return
                await asyncio.sleep(self.every)

    def times(self) -> list[tuple[int, float]]:
        return self.seen


def lags(generating: Reader, elsewhere: Reader | CheckpointReader) -> list[float]:
    """For each delta the generating process delivered: how long until the other follower had that text too."""
    other = elsewhere.times()
    return [next(t for s, t in other if s >= size) - at for size, at in generating.times()]


def summary(lag: list[float]) -> str:
    p50, p95 = statistics.median(lag) * 1000, statistics.quantiles(lag, n=20)[18] * 1000
    return f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {max(lag) * 1000:.1f} ms"


async def follow_and_resume(a: str, b: str, token: str, workspace: str, transport: str) -> None:
    # 1. asked on A; followed on A and, live, on B
    asker = Reader(a, token)
    await asker.open(CHAT, {"w": workspace, "q": "How do fjords form?"})
    started = await asker.event()
    assert started["kind"] == "STARTED"
    message = started["messageId"]
    near, far, stored = Reader(a, token), Reader(b, token), CheckpointReader(b, token, workspace, message)
    await near.open(STREAM, {"w": workspace, "m": message, "o": 0})
    await far.open(STREAM, {"w": workspace, "m": message, "o": 0})
    await asyncio.gather(asker.to_the_end(), near.to_the_end(), far.to_the_end(), stored.to_the_end())
    assert far.final["status"] == "COMPLETE" and far.text() == far.final["content"] == asker.text()
    # live, not from the checkpoints (every 2 s: a handful of pieces for this answer of ~5 s)
    assert len(far.deltas) > 20, len(far.deltas)
    live, polled = lags(near, far), lags(near, stored)
    assert statistics.median(live) < statistics.median(polled)
    print(f"\n{transport}: a follower on the other process lags a follower on the generating one by: over the live "
          f"feed ({len(far.deltas)} deltas) {summary(live)}; reading the stored checkpoints every 50 ms instead "
          f"({len(stored.seen)} growths) {summary(polled)}")

    # 2. asked on A, the socket lost mid-answer, resumed on B from what had arrived
    lost = Reader(a, token)
    await lost.open(CHAT, {"w": workspace, "q": "And then?"})
    message = (await lost.event())["messageId"]
    while len(lost.text()) < 40:
        await lost.event()
    lost.ws.transport.abort()  # no close frame: a phone losing its network
    received = lost.text()
    await asyncio.sleep(0.5)  # the answer goes on meanwhile
    resumed = Reader(b, token)
    await resumed.open(STREAM, {"w": workspace, "m": message, "o": len(received)})
    await resumed.to_the_end()
    assert resumed.final["status"] == "COMPLETE"
    assert received + resumed.text(start=len(received)) == resumed.final["content"]
    print(f"resumed on the other process at character {len(received)} of {len(resumed.final['content'])}: "
          f"{len(resumed.deltas)} deltas, the first of {len(resumed.deltas[0][2])} characters")

    # 3. asked on A, stopped through B: A stops it (over the feed) and stores what it had
    stopped = Reader(a, token)
    await stopped.open(CHAT, {"w": workspace, "q": "Stop me"})
    message = (await stopped.event())["messageId"]
    while len(stopped.text()) < 40:
        await stopped.event()
    asked_at = time.monotonic()
    async with httpx.AsyncClient(base_url=b, timeout=30) as on_b:
        answer = (await on_b.post("/graphql", headers={"Authorization": f"Bearer {token}"}, json={
            "query": STOP, "variables": {"w": workspace, "m": message}})).json()
    assert answer["data"]["stopAnswer"]["__typename"] == "Message", answer
    await stopped.to_the_end()
    assert stopped.final["status"] == "CANCELLED" and stopped.final["content"] == stopped.text()
    assert len(stopped.text()) < len(resumed.final["content"])
    print(f"stopped through the other process: the generating one ended it "
          f"{(time.monotonic() - asked_at) * 1000:.0f} ms after the request, at character {len(stopped.text())}")


@pytest.mark.parametrize("transport", ["postgres", "redis"])
def test_an_answer_is_followed_live_and_resumed_on_another_api_process(test_env, transport, request):
    """Over Postgres LISTEN/NOTIFY by default, over Redis pub/sub when KEEL_REDIS_URL is set."""
    redis = {"KEEL_REDIS_URL": request.getfixturevalue("redis_url")} if transport == "redis" else {}
    fake = slow_provider()
    with fake.serve() as served:
        env = {**provider_env(test_env, fake, served.url), **redis}
        worker = start_worker(env)
        try:
            with keel_serve(env) as (a, _), keel_serve(env) as (b, _):
                _, workspace, token = account(a)

                async def scenario() -> None:
                    async with httpx.AsyncClient(base_url=b, timeout=60) as on_b:  # uploaded on B, asked on A
                        uploaded = await upload(on_b, token, workspace, "fjords.md",
                                                b"# Fjords\n\nGlaciers carve fjords.", "text/markdown")
                        settled = await wait_until_settled(on_b, token, workspace,
                                                           uploaded["documents"][0]["document"]["id"])
                        assert settled["status"] == "READY"
                    await follow_and_resume(a, b, token, workspace, transport)

                asyncio.run(scenario())
        finally:
            stop_worker(worker)
