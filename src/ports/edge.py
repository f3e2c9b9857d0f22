"""Edge ports: rate limits (quotas of request units per period) shared by every API process."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from src.ports.shared import DomainError


@dataclass(frozen=True, slots=True)
class Quota:
    """`limit` units per `period_seconds` under `key` ("user:<id>", "ip:<address>", …); `policy` names it in
    the RateLimit-Policy header."""

    key: str
    limit: int
    period_seconds: int
    policy: str


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The outcome of taking units from a quota."""

    allowed: bool
    policy: str
    limit: int
    period_seconds: int
    remaining: int
    reset_seconds: float  # until the quota is whole again
    retry_after_seconds: float = 0.0  # when refused: until enough units are back


    @classmethod
    def gcra(cls, quota: Quota, cost: int, ahead: float) -> RateDecision:
        """The generic cell rate algorithm, the same in every store: the quota's theoretical arrival time is
        `ahead` seconds from now before this take (≤ 0: whole); each unit moves it one interval on, and a take
        that would move it past one period from now is refused. Allowed = the store moves it to `reset`."""
        interval = quota.period_seconds / quota.limit
        ahead = max(ahead, 0.0)
        after = ahead + cost * interval
        if after <= quota.period_seconds:
            remaining = math.floor((quota.period_seconds - after) / interval + 1e-9)
            return cls(True, quota.policy, quota.limit, quota.period_seconds, remaining, after)
        remaining = math.floor((quota.period_seconds - ahead) / interval + 1e-9)
        retry = after - quota.period_seconds if cost <= quota.limit else float(quota.period_seconds)
        return cls(False, quota.policy, quota.limit, quota.period_seconds, remaining, ahead, retry)


    def header_fields(self) -> dict[str, str]:
        """As the IETF draft's RateLimit and RateLimit-Policy fields (and Retry-After when refused)."""
        if not self.policy:
            return {}
        fields = {"RateLimit-Policy": f'"{self.policy}";q={self.limit};w={self.period_seconds}',
                  "RateLimit": f'"{self.policy}";r={self.remaining};t={math.ceil(self.reset_seconds)}'}
        if not self.allowed:
            fields["Retry-After"] = str(max(1, math.ceil(self.retry_after_seconds)))
        return fields


UNLIMITED = RateDecision(True, "", 0, 0, 0, 0.0)


class RateLimited(DomainError):
    code = "rate_limited"

    def __init__(self, decision: RateDecision) -> None:
        self.decision = decision
        self.retry_after_seconds = max(1, math.ceil(decision.retry_after_seconds))
        super().__init__(f"too many requests ({decision.policy}: {decision.limit} units per "
                         f"{decision.period_seconds} s); retry in {self.retry_after_seconds} s")


@runtime_checkable
class RateLimiter(Protocol):
    async def take(self, quota: Quota, cost: int) -> RateDecision:
        """Takes `cost` units from the quota, or refuses when it lacks them; concurrent takes never admit
        past the limit."""
        ...
