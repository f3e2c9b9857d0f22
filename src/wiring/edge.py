"""Edge wiring: the rate limiters (shared through Postgres, or Redis when configured; one per process)."""

from __future__ import annotations

from dependency_injector import providers
from sqlalchemy.ext.asyncio import AsyncEngine

from src.adapters.memory.rate_limits import ProcessRateLimiter
from src.adapters.postgres.rate_limits import PgRateLimiter
from src.adapters.redis.rate_limits import RedisRateLimiter
from src.config import Settings
from src.core.edge.rate_limits import DEFAULT_COSTS, Admission, RateLimitConfig
from src.ports.edge import RateLimiter
from src.wiring.foundation import Foundation


def shared_rate_limiter(settings: Settings, engine: AsyncEngine) -> RateLimiter:
    return RedisRateLimiter(settings.redis_url) if settings.redis_url else PgRateLimiter(engine)


def rate_limit_config(settings: Settings) -> RateLimitConfig:
    return RateLimitConfig(anonymous_per_minute=settings.rate_anonymous_per_minute,
                           user_per_minute=settings.rate_user_per_minute,
                           api_key_per_minute=settings.rate_api_key_per_minute,
                           process_per_second=settings.rate_process_per_second,
                           costs={**DEFAULT_COSTS, **settings.rate_cost_overrides()})


class EdgeWiring(Foundation):
    rate_limiter = providers.Singleton(shared_rate_limiter, Foundation.settings, Foundation.engine)
    process_rate_limiter = providers.Singleton(ProcessRateLimiter)
    rate_limits = providers.Singleton(rate_limit_config, Foundation.settings)
    admission = providers.Singleton(Admission, rate_limiter, process_rate_limiter,
                                    Foundation.entitlements, rate_limits, Foundation.telemetry)
