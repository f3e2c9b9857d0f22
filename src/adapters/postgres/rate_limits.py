"""Rate limits in Postgres: one row per quota (its theoretical arrival time, GCRA) in an unlogged table,
taken in one statement. The upsert locks the row and re-checks the limit on its newest version, so
concurrent takes from every API process queue on it and never admit past the limit. Time is the
database's, so processes need no common clock. A missing row is a whole quota: rows whose time has passed
are deleted now and then without losing anything."""

from __future__ import annotations

import itertools
from dataclasses import replace

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine

from src.ports.edge import Quota, RateDecision
from src.ports.shared import StorageUnavailable

_NOW = "extract(epoch FROM statement_timestamp())"
_TAKE = text(f"""
INSERT INTO rate_limits AS b (key, tat) VALUES (:key, {_NOW} + :inc)
ON CONFLICT (key) DO UPDATE SET tat = greatest(b.tat, {_NOW}) + :inc
    WHERE greatest(b.tat - {_NOW}, 0) + :inc <= :period
RETURNING tat - {_NOW} AS ahead""")
_AHEAD = text(f"SELECT tat - {_NOW} FROM rate_limits WHERE key = :key")
_PRUNE = text(f"DELETE FROM rate_limits WHERE tat < {_NOW}")
PRUNE_EVERY = 5_000  # takes per process between deletions of whole quotas


class PgRateLimiter:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")  # one round trip per take
        self._takes = itertools.count(1)

    async def take(self, quota: Quota, cost: int) -> RateDecision:
        increment = cost * quota.period_seconds / quota.limit
        if increment > quota.period_seconds:  # more than the whole quota: never
            return RateDecision.gcra(quota, cost, 0.0)
        try:
            async with self._engine.connect() as connection:
                ahead = (await connection.execute(_TAKE, {"key": quota.key, "inc": increment,
                                                          "period": float(quota.period_seconds)})).scalar()
                if ahead is None:  # refused: how far ahead the quota stands
                    before = (await connection.execute(_AHEAD, {"key": quota.key})).scalar() or 0.0
                    decision = RateDecision.gcra(quota, cost, before)
                    return decision if not decision.allowed else replace(decision, allowed=False,
                                                                         retry_after_seconds=increment)
                if next(self._takes) % PRUNE_EVERY == 0:
                    await connection.execute(_PRUNE)
        except (PoolTimeout, OperationalError, OSError) as exc:
            raise StorageUnavailable("the rate-limit store is unreachable") from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise StorageUnavailable("the rate-limit store is unreachable") from exc
            raise
        decision = RateDecision.gcra(quota, cost, ahead - increment)
        return decision if decision.allowed else replace(decision, allowed=True, remaining=0,
                                                         retry_after_seconds=0.0)
