"""Benchmarks reuse the test fixtures (migrated test database, settings). Run: ./keel test benchmarks

They measure Keel's own work, so the rate limits are off unless a benchmark turns them on (the edge
benchmark measures the limiter itself)."""

import os

import pytest

from src.cli.migrate import upgrade
from tests.conftest import NO_RATE_LIMITS, _test_settings, container, redis_url, worker_process  # noqa: F401

UNLIMITED = {**NO_RATE_LIMITS, "ws_max_per_caller": 10_000, "ws_max_operations": 1_000,
             "sign_ups_per_address_hourly": 0,
             "password_hash_memory_kib": 65_536, "password_hash_time_cost": 3}  # hashing as in production


@pytest.fixture(scope="session")
def settings():
    config = _test_settings()
    upgrade(config)
    return config.model_copy(update=UNLIMITED)


@pytest.fixture(scope="session")
def test_env(settings) -> dict[str, str]:
    """Environment for the processes a benchmark starts (servers, workers), limits off as above."""
    env = dict(os.environ)
    if settings.embedded_database:
        env["KEEL_DB_NAME"] = settings.db_name
    return {**env, **{f"KEEL_{name.upper()}": str(value) for name, value in UNLIMITED.items()}}
