"""The workers' metrics: every worker process writes its series to files in PROMETHEUS_MULTIPROC_DIR
(Prometheus multiprocess mode, set up by `keel worker`), and one extra process that Dramatiq forks serves
their sum at http://KEEL_WORKER_METRICS_HOST:KEEL_WORKER_METRICS_PORT/metrics. Jobs are measured here, by
actor; what the use cases report inside the jobs (model calls, embedding) comes from the same Telemetry as
in the API."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dramatiq
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from src.config import load_settings
from src.ports.context import context_of
from src.ports.telemetry import Span, Telemetry

log = logging.getLogger(__name__)
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
RUN_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)


class JobMetrics(dramatiq.Middleware):
    """Runs, failures, retries and run time per actor; jobs in progress."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter("keel_job_runs", "Jobs run, by outcome (ok, failed)", ["actor", "outcome"],
                            registry=registry)
        self.retries = Counter("keel_job_retries", "Failed jobs queued again for a retry", ["actor"],
                               registry=registry)
        self.run_time = Histogram("keel_job_run_seconds", "Jobs, start to end", ["actor"], buckets=RUN_BUCKETS,
                                  registry=registry)
        self.running = Gauge("keel_jobs_running", "Jobs being run now", ["actor"], multiprocess_mode="livesum",
                             registry=registry)
        self._started: dict[str, float] = {}

    def after_worker_boot(self, broker, worker) -> None:
        # every actor's series exist from the start, at 0: a rate over a series that appears later is wrong
        for actor in broker.get_declared_actors():
            self.retries.labels(actor)
            for outcome in ("ok", "failed"):
                self.runs.labels(actor, outcome)

    def before_process_message(self, broker, message) -> None:
        self._started[message.message_id] = time.monotonic()
        self.running.labels(message.actor_name).inc()

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        started = self._started.pop(message.message_id, None)
        if started is None:
            return
        self.running.labels(message.actor_name).dec()
        self.run_time.labels(message.actor_name).observe(time.monotonic() - started)
        self.runs.labels(message.actor_name, "failed" if exception is not None else "ok").inc()

    after_skip_message = after_process_message

    def after_enqueue(self, broker, message, delay) -> None:
        if message.options.get("retries"):  # Dramatiq's Retries middleware re-enqueues with the count
            self.retries.labels(message.actor_name).inc()

    def after_worker_shutdown(self, broker, worker) -> None:
        if os.environ.get(MULTIPROC_DIR):
            multiprocess.mark_process_dead(os.getpid())


class JobContext(dramatiq.Middleware):
    """A job runs in the context of the request that made it (its message carries it): its log lines carry the
    request id, plus the job's actor and message id; its span continues the request's trace."""

    def __init__(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry
        self._scopes: dict[str, contextlib.ExitStack] = {}
        self._spans: dict[str, Span] = {}

    def before_process_message(self, broker, message) -> None:
        carried = message.options.get("keel_context") or {}
        scope = contextlib.ExitStack()
        scope.enter_context(context_of({**carried, "job": message.actor_name, "message_id": message.message_id}))
        span = scope.enter_context(self._telemetry.span(
            f"job {message.actor_name}", {"messaging.system": "dramatiq", "messaging.operation.type": "process",
                                          "messaging.destination.name": message.queue_name,
                                          "messaging.message.id": message.message_id},
            parent=carried.get("traceparent")))
        self._scopes[message.message_id] = scope
        self._spans[message.message_id] = span

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        scope, span = self._scopes.pop(message.message_id, None), self._spans.pop(message.message_id, None)
        if span is not None and exception is not None:
            span.fail(type(exception).__name__)
        if scope is not None:
            scope.close()

    after_skip_message = after_process_message


class _Scrape(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/metrics":
            self.send_error(404)
            return
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # scrapes every few seconds: not worth a line
        pass


def serve_metrics() -> None:
    """Dramatiq's fork function (`--fork-function`): serves the worker processes' summed metrics."""
    settings = load_settings()
    host, port = settings.worker_metrics_host, settings.worker_metrics_port
    if not port:
        return
    try:
        server = ThreadingHTTPServer((host, port), _Scrape)
    except OSError as exc:
        log.error("worker metrics not served: %s:%d: %s (set KEEL_WORKER_METRICS_PORT)", host, port, exc)
        return
    log.info("worker metrics at http://%s:%d/metrics", host, port)
    server.serve_forever()
