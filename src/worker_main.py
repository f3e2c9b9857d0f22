"""Worker entry point, loaded by Dramatiq in each worker process: `keel worker` (or `dramatiq src.worker_main`)."""

from __future__ import annotations

import logging

import dramatiq

from src.adapters.logs import install_log_redaction
from src.config import load_settings
from src.container import build_container, services_of
from src.workers import runtime
from src.workers.schedule import PeriodicJobs

container = build_container(load_settings())
logging.basicConfig(level=container.settings().log_level.upper())
install_log_redaction()  # no email or card number reaches a log
broker = container.broker()
broker.add_middleware(PeriodicJobs(interval=container.settings().schedule_check_seconds))
dramatiq.set_broker(broker)
runtime.bind(services_of(container))
_loaded = container.embedders().warm()  # ingestion's first batch would otherwise wait for it
if _loaded:
    logging.getLogger(__name__).info("embedding model %s loaded", _loaded)

from src.workers import actors  # noqa: E402,F401  (actors bind to the broker set above)
