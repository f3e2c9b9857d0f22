"""Worker entry point, loaded by Dramatiq in each worker process: `keel worker` (or `dramatiq src.worker_main`)."""

from __future__ import annotations

import logging

import dramatiq

from src.adapters.logs import configure_logging
from src.adapters.telemetry.tracing import configure_tracing
from src.config import load_settings
from src.container import build_container, services_of
from src.workers import runtime
from src.workers.metrics import JobContext, JobMetrics
from src.workers.schedule import PeriodicJobs

container = build_container(load_settings())
configure_logging(container.settings().log_level, container.settings().log_format)  # with each job's request id
broker = container.broker()
broker.add_middleware(PeriodicJobs(interval=container.settings().schedule_check_seconds))
broker.add_middleware(JobMetrics(container.metrics_registry()))
if container.settings().tracing_on:
    configure_tracing("keel-worker")
broker.add_middleware(JobContext(container.telemetry()))
dramatiq.set_broker(broker)
runtime.bind(services_of(container))
_loaded = container.embedders().warm()  # ingestion's first batch would otherwise wait for it
if _loaded:
    logging.getLogger(__name__).info("embedding model %s loaded", _loaded)

from src.workers import actors  # noqa: E402,F401  (actors bind to the broker set above)
