"""The services a worker process runs with, bound once by the worker entry point (src.worker_main)."""

from __future__ import annotations

import os
import socket

from src.core.services import Services

_services: Services | None = None

WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"


def bind(services: Services) -> None:
    global _services
    _services = services


def services() -> Services:
    if _services is None:
        raise RuntimeError("worker services are not bound; start workers with `keel worker`")
    return _services
