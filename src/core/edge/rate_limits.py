"""Rate limits: every request spends units, the sum of its operations' costs (a chat or a search costs
more than `me`), from quotas that refill continuously:
- the process's own quota per second (load shedding: one process, one quota, no shared state needed);
  REST routes that must take bursts from few addresses (Stripe's webhooks) spend only this one;
- the caller's per minute: the client address for anonymous calls, the user for a session, the key for an
  API key (its own rate, else the default);
- the workspace's per minute, set by its plan, spent only once the caller is authorised there (so a
  stranger who knows a workspace's id cannot spend its quota).
Every API process shares the caller and workspace quotas through the limiter store. A store that cannot
be reached lets requests through (logged): the limiter must not be what takes the API down. A limit of 0
turns that quota off.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from src.ports.billing import EntitlementChecker
from src.ports.edge import UNLIMITED, Quota, RateDecision, RateLimited, RateLimiter
from src.ports.identity import ClientInfo, Principal
from src.ports.shared import StorageUnavailable
from src.ports.telemetry import Telemetry

log = logging.getLogger(__name__)
MINUTE = 60
PLAN_CACHE_SECONDS = 30.0  # a plan change reaches the workspace's quota this much later at most

DEFAULT_COSTS = {
    "chat": 20, "suggestConversationTitle": 10, "search": 5, "uploadDocument": 10, "uploadDocuments": 10,
    "signUp": 10, "signIn": 5, "requestPasswordReset": 5, "resetPassword": 5, "changePassword": 5,
    "startCheckout": 5, "openBillingPortal": 5, "path": 5, "entity": 3, "messageStream": 2,
}


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    anonymous_per_minute: int = 120
    user_per_minute: int = 1_200
    api_key_per_minute: int = 1_200  # for keys without a rate of their own
    process_per_second: int = 1_000
    costs: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_COSTS))

    def cost(self, operations: Sequence[str]) -> int:
        return max(1, sum(self.costs.get(operation, 1) for operation in operations))


def caller_quota(principal: Principal | None, client: ClientInfo, config: RateLimitConfig) -> Quota:
    if principal is None:
        return Quota(f"ip:{client.ip or 'unknown'}", config.anonymous_per_minute, MINUTE, "address")
    if principal.api_key_id is not None:
        rate = principal.key_requests_per_minute or config.api_key_per_minute
        return Quota(f"key:{principal.api_key_id}", rate, MINUTE, "api-key")
    return Quota(f"user:{principal.user_id}", config.user_per_minute, MINUTE, "user")


class Admission:
    """Whether a request may go ahead now; raises RateLimited with when to retry."""

    def __init__(self, shared: RateLimiter, local: RateLimiter, entitlements: EntitlementChecker,
                 config: RateLimitConfig, telemetry: Telemetry) -> None:
        self._shared, self._local, self._entitlements, self._config = shared, local, entitlements, config
        self._telemetry = telemetry
        self._plan_rates: dict[UUID, tuple[float, int]] = {}

    async def process(self, operations: Sequence[str]) -> RateDecision:
        """This process's own quota (load shedding), with nothing shared."""
        quota = Quota("process", self._config.process_per_second, 1, "process")
        decision = await self._local.take(quota, self._config.cost(operations)) if quota.limit else UNLIMITED
        if not decision.allowed:
            self._telemetry.rate_limited(quota.policy)
            raise RateLimited(decision)
        return decision

    async def caller(self, principal: Principal | None, client: ClientInfo,
                     operations: Sequence[str]) -> RateDecision:
        """Before any work: the process's quota, then the caller's."""
        await self.process(operations)
        return await self._take(caller_quota(principal, client, self._config), self._config.cost(operations))

    async def workspace(self, workspace_id: UUID, operation: str) -> RateDecision:
        """Once the caller may act in the workspace: the workspace's quota, as its plan sets it."""
        rate = await self._plan_rate(workspace_id)
        return await self._take(Quota(f"workspace:{workspace_id}", rate, MINUTE, "workspace"),
                                self._config.cost([operation]))

    async def _take(self, quota: Quota, cost: int) -> RateDecision:
        if quota.limit <= 0:  # configured off
            return UNLIMITED
        try:
            decision = await self._shared.take(quota, cost)
        except StorageUnavailable as exc:
            log.warning("rate limits not checked (%s): letting the request through", exc)
            return UNLIMITED
        if not decision.allowed:
            self._telemetry.rate_limited(quota.policy)
            raise RateLimited(decision)
        return decision

    async def _plan_rate(self, workspace_id: UUID) -> int:
        now = time.monotonic()
        cached = self._plan_rates.get(workspace_id)
        if cached and cached[0] > now:
            return cached[1]
        rate = (await self._entitlements.entitlement(workspace_id)).limits.requests_per_minute
        if len(self._plan_rates) > 10_000:  # a bound, not an LRU: entries expire in seconds anyway
            self._plan_rates.clear()
        self._plan_rates[workspace_id] = (now + PLAN_CACHE_SECONDS, rate)
        return rate
