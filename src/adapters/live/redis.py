"""The live feed over Redis pub/sub (when KEEL_REDIS_URL is set): a batch is one pipelined round trip of
PUBLISHes; redis-py's pub/sub connection re-subscribes every channel when it reconnects."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from src.adapters.live.channels import WANTED, ChannelFeed

log = logging.getLogger(__name__)
FAILURES = (RedisError, OSError)


class RedisAnswerFeed(ChannelFeed):
    def __init__(self, url: str) -> None:
        super().__init__()
        self._redis = Redis.from_url(url, socket_connect_timeout=5)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)

    async def _deliver(self, batch: list[tuple[str, str]]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for channel, payload in batch:
                pipe.publish(channel, payload)
            await pipe.execute()

    async def _listen(self, channel: str) -> None:
        try:
            await self._pubsub.subscribe(channel)
        except FAILURES as exc:  # re-subscribed on reconnection; checkpoints meanwhile
            log.debug("live feed: cannot subscribe yet: %s", exc)

    async def _unlisten(self, channel: str) -> None:
        with contextlib.suppress(*FAILURES):
            await self._pubsub.unsubscribe(channel)

    async def _disconnect(self) -> None:
        with contextlib.suppress(*FAILURES):
            await self._pubsub.aclose()
            await self._redis.aclose()

    async def _keep_connected(self) -> None:
        pause = 0.5
        while True:
            try:
                await self._pubsub.subscribe(WANTED)
                pause = 0.5
                async for message in self._pubsub.listen():
                    if message["type"] == "message":
                        self._received(message["channel"].decode(), message["data"].decode())
            except FAILURES as exc:
                log.warning("live feed: no connection to Redis (%s); retrying in %.1f s", exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
