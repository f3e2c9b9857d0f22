"""`keel serve --workers 2`: two API processes behind one port. Chats asked on one socket and followed on
another (wherever each lands) arrive whole, and /metrics, whichever process answers it, sums both."""

from __future__ import annotations

import asyncio

import httpx
import psutil
import pytest

from tests.api.test_live_fanout import CHAT, STREAM, Reader, provider_env, slow_provider
from tests.api.test_metrics import samples, value
from tests.api.test_openai_api import account
from tests.conftest import keel_serve

pytestmark = pytest.mark.slow
CHATS = 6


async def ask_and_follow(base: str, token: str, workspace: str) -> list[Reader]:
    async def one(number: int) -> list[Reader]:
        asker = Reader(base, token)
        await asker.open(CHAT, {"w": workspace, "q": f"Fjords {number}?"})
        started = await asker.event()
        follower = Reader(base, token)
        await follower.open(STREAM, {"w": workspace, "m": started["messageId"], "o": 0})
        await asyncio.gather(asker.to_the_end(close=False), follower.to_the_end(close=False))
        assert follower.final["status"] == "COMPLETE"
        assert follower.text() == asker.text() == follower.final["content"]
        return [asker, follower]

    return [reader for pair in await asyncio.gather(*(one(n) for n in range(CHATS))) for reader in pair]


def test_two_api_processes_on_one_port_share_answers_and_metrics(test_env):
    fake = slow_provider()
    with fake.serve() as served, keel_serve({**provider_env(test_env, fake, served.url),
                                             "KEEL_API_PROCESSES": "2"}) as (base, api):
        serving = [child for child in psutil.Process(api.pid).children()
                   if "spawn_main" in " ".join(child.cmdline())]
        assert len(serving) == 2, [child.cmdline() for child in psutil.Process(api.pid).children()]
        _, workspace, token = account(base)

        async def scenario() -> dict:
            readers = await ask_and_follow(base, token, workspace)
            port = int(base.rsplit(":", 1)[1])
            spread = [sum(1 for c in child.net_connections() if c.laddr and c.laddr.port == port
                          and c.status == psutil.CONN_ESTABLISHED) for child in serving]
            print(f"\nsockets held by each API process: {spread}")
            await asyncio.sleep(6)  # every process refreshes its own gauges every 5 s
            async with httpx.AsyncClient(base_url=base) as http:
                found = samples((await http.get("/metrics")).text)
            for reader in readers:
                await reader.ws.close()
            return found

        found = asyncio.run(scenario())
    assert value(found, "keel_websockets_open") == 2 * CHATS  # both processes' sockets, summed
    assert value(found, "keel_live_answers") == 0
    assert value(found, "keel_llm_requests_total", provider="openai", model="gpt-4o-mini",
                 template="rag_answer@1", outcome="ok") == CHATS
