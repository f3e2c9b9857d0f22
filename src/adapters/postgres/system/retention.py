"""Pruning in batches: each statement deletes at most `limit` of its table's oldest-first matches (a
short transaction, locks on few rows), so the job can run beside traffic on a large backlog."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from src.ports.system import Prunable


def _batch(table: str, condition: str) -> str:
    return f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE {condition} LIMIT :limit))"


STATEMENTS: dict[Prunable, tuple[str, ...]] = {
    Prunable.WEBHOOK_EVENTS: (_batch("stripe_events", "processed_at < :before"),),
    Prunable.AUDIT_EVENTS: (_batch("audit_events", "at < :before"),),
    Prunable.SENT_EMAILS: (_batch("email_outbox", "sent_at < :before"),),
    Prunable.USAGE_DETAIL: (_batch("usage_records", "settled_at < :before"),),
    Prunable.THROTTLE_ROWS: (_batch("auth_attempts", "last_attempt_at < :before"),
                             # a bucket whose theoretical arrival time has passed limits nothing
                             _batch("rate_limits", "tat < extract(epoch FROM CAST(:before AS timestamptz))")),
    Prunable.EXPIRED_CREDENTIALS: (_batch("sessions", "least(revoked_at, expires_at) < :before"),
                                   _batch("one_time_tokens", "expires_at < :before"),
                                   _batch("oauth_states", "expires_at < :before")),
    Prunable.HANDLED_JOBS: (_batch("worker_probes", "requested_at < :before"),),
}


class PgRetentionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def prune(self, kind: Prunable, before: datetime, limit: int) -> int:
        pruned = 0
        for statement in STATEMENTS[kind]:
            result = await self._session.execute(text(statement), {"before": before, "limit": limit})
            pruned += result.rowcount  # type: ignore[attr-defined]
        return pruned
