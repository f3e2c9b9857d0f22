"""Data that grows without bound goes once past its horizon: a periodic job (hourly) prunes each kind in
short batches. Horizons for data people may need to look back on are settings (0 keeps it forever);
security leftovers (expired sessions and tokens, throttle windows, answered worker probes) go after a day."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from src.ports.shared import Clock
from src.ports.system import Prunable, SystemUnitOfWork

PRUNE_JOB = "system.prune_expired_data"
DAY = timedelta(days=1)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionPolicy:
    webhook_events_days: int = 90  # Stripe retries a delivery for 3 days; its event ids must outlive that
    audit_days: int = 365
    sent_email_days: int = 30
    usage_detail_days: int = 400  # per-call rows behind the usage analytics; daily totals stay for good

    def horizons(self) -> dict[Prunable, timedelta]:
        kept = {Prunable.WEBHOOK_EVENTS: self.webhook_events_days, Prunable.AUDIT_EVENTS: self.audit_days,
                Prunable.SENT_EMAILS: self.sent_email_days, Prunable.USAGE_DETAIL: self.usage_detail_days}
        horizons = {kind: timedelta(days=days) for kind, days in kept.items() if days > 0}
        return {**horizons, Prunable.THROTTLE_ROWS: DAY, Prunable.EXPIRED_CREDENTIALS: DAY,
                Prunable.HANDLED_JOBS: DAY}


class PruneExpiredData:
    """- Deletes what is older than its horizon, `batch` rows per transaction, at most `max_batches` per
      kind and run (the next run goes on); returns the count per kind. Running it twice prunes nothing more."""

    def __init__(self, uow: Callable[[], SystemUnitOfWork], clock: Clock, policy: RetentionPolicy,
                 batch: int = 5_000, max_batches: int = 200) -> None:
        self._uow = uow
        self._clock = clock
        self._policy = policy
        self._batch = batch
        self._max_batches = max_batches

    async def execute(self) -> dict[Prunable, int]:
        now = self._clock.now()
        pruned: dict[Prunable, int] = {}
        for kind, horizon in self._policy.horizons().items():
            pruned[kind] = 0
            for _ in range(self._max_batches):
                async with self._uow() as uow:
                    count = await uow.retention.prune(kind, now - horizon, self._batch)
                    await uow.commit()
                pruned[kind] += count
                if count < self._batch:
                    break
        if any(pruned.values()):
            log.info("pruned expired data: %s", ", ".join(f"{kind.value} {n}" for kind, n in pruned.items() if n))
        return pruned
