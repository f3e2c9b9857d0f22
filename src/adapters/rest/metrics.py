"""Prometheus metrics served at GET /metrics: request counts and latencies by route, plus what the use cases
report (the registry they share) and the gauges `refresh` sets at each scrape."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match

from src.ports.identity import Forbidden
from src.ports.shared import StorageUnavailable

log = logging.getLogger(__name__)


class HttpMetrics:
    """Pure ASGI middleware (it must not buffer streamed or websocket responses)."""

    def __init__(self, app, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "keel_http_requests", "HTTP requests", ["method", "route", "status"], registry=registry
        )
        self.latency = Histogram(
            "keel_http_request_seconds", "HTTP request latency", ["method", "route"], registry=registry
        )

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = _route_of(scope)
        status = {"code": 500}

        async def send_and_record(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_and_record)
        finally:
            self.latency.labels(scope["method"], route).observe(time.perf_counter() - started)
            self.requests.labels(scope["method"], route, str(status["code"])).inc()


def _route_of(scope) -> str:
    # Label by route template, never by raw path: raw paths would let clients create unbounded series.
    for route in scope["app"].routes if "app" in scope else []:
        if route.matches(scope)[0] == Match.FULL:
            return getattr(route, "path", "other")
    return "other"


def multiprocess_metrics() -> bool:
    """Set by `keel serve --workers N`: every process writes its metrics to files in that directory."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def exposition(registry: CollectorRegistry) -> bytes:
    """This process's metrics, or, when several API processes serve, theirs summed (each gauge by its mode)."""
    if not multiprocess_metrics():
        return generate_latest(registry)
    summed = CollectorRegistry()
    multiprocess.MultiProcessCollector(summed)
    return generate_latest(summed)


def metrics_endpoint(registry: CollectorRegistry, refresh: Callable[[str | None], Awaitable[None]]):
    """`refresh(token)` sets the scrape-time gauges; it raises Forbidden without the operator's token."""

    async def metrics(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        try:
            await refresh(header[7:].strip() if header.lower().startswith("bearer ") else None)
        except Forbidden as exc:
            return JSONResponse({"error": {"code": exc.code, "message": str(exc)}}, status_code=403,
                                headers={"WWW-Authenticate": "Bearer"})
        except StorageUnavailable as exc:  # the counters still tell what happened; the gauges stay as they were
            log.warning("metrics: operational counts not read (%s)", exc)
        return Response(exposition(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
