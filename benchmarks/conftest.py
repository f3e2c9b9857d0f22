"""Benchmarks reuse the test fixtures (migrated test database, settings). Run: ./keel test benchmarks"""

from tests.conftest import container, settings, test_env, worker_process  # noqa: F401
