"""Rate limits in Redis, through the `limits` library's moving window (exact: each take is one atomic
script in Redis, so concurrent takes from every API process never admit past the limit)."""

from __future__ import annotations

import time

from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import BlockingConnectionPool

from src.ports.edge import Quota, RateDecision
from src.ports.shared import StorageUnavailable


class RedisRateLimiter:
    def __init__(self, url: str, connections: int = 32) -> None:
        """`url`: redis://… or rediss://… A burst waits for one of `connections` (5 s at most) rather than
        opening one connection per concurrent request."""
        pool = BlockingConnectionPool.from_url(url, max_connections=connections, timeout=5)
        storage = RedisStorage(f"async+{url}", implementation="redispy", wrap_exceptions=True, key_prefix="keel",
                               connection_pool=pool)
        self._limiter = MovingWindowRateLimiter(storage)
        self._storage = storage

    async def take(self, quota: Quota, cost: int) -> RateDecision:
        item = RateLimitItemPerSecond(quota.limit, quota.period_seconds, namespace="rate")
        try:
            allowed = await self._limiter.hit(item, quota.key, cost=cost)
            window = await self._limiter.get_window_stats(item, quota.key)
        except (StorageError, OSError) as exc:
            raise StorageUnavailable("the rate-limit store (Redis) is unreachable") from exc
        reset = max(0.0, window.reset_time - time.time())
        return RateDecision(allowed, quota.policy, quota.limit, quota.period_seconds, max(0, window.remaining),
                            reset, 0.0 if allowed else max(reset, 1.0))
