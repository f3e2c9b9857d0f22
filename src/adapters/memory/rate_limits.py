"""Rate limits kept in this process's memory: for quotas that belong to one process, such as its own
load-shedding quota, where a shared store would only add a round trip."""

from __future__ import annotations

import time

from src.ports.edge import Quota, RateDecision


class ProcessRateLimiter:
    def __init__(self) -> None:
        self._arrivals: dict[str, float] = {}  # key -> theoretical arrival time (monotonic seconds)

    async def take(self, quota: Quota, cost: int) -> RateDecision:
        now = time.monotonic()
        decision = RateDecision.gcra(quota, cost, self._arrivals.get(quota.key, now) - now)
        if decision.allowed:
            self._arrivals[quota.key] = now + decision.reset_seconds
        return decision
