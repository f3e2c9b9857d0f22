"""Telemetry as Prometheus metrics (prometheus-client), and spans by the tracing it is given. One registry
per process; in the workers, Prometheus multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by `keel worker`)
sums every worker process's files. Names follow Prometheus conventions (base units, `_total` on counters);
labels are bounded."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from src.adapters.telemetry.tracing import NoTracing, OtelTracing
from src.ports.models import Usage
from src.ports.system import Operations

MODEL = ["provider", "model", "template"]
# seconds: from a fast first token to a long answer
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0)
FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
COUNT_BUCKETS = (0, 1, 5, 10, 25, 50, 100, 200, 400, 800)


class PrometheusTelemetry:
    """Implements the Telemetry port; also the gauges the metrics endpoint sets at each scrape."""

    def __init__(self, registry: CollectorRegistry, tracing: OtelTracing | NoTracing) -> None:
        r = registry
        self.start_span, self.span = tracing.start_span, tracing.span  # tracing: src/adapters/telemetry/tracing
        self.llm_requests = Counter("keel_llm_requests", "Requests sent to a model, by outcome (ok, error, "
                                    "cancelled)", [*MODEL, "outcome"], registry=r)
        self.llm_errors = Counter("keel_llm_errors", "Failed model requests by code (HTTP status, timeout, "
                                  "connection, empty)", [*MODEL, "code"], registry=r)
        self.llm_retries = Counter("keel_llm_retries", "Model requests retried", MODEL, registry=r)
        self.llm_fallbacks = Counter("keel_llm_fallbacks", "Answers given by a later model of the fallback chain",
                                     ["template", "from_model", "to_model"], registry=r)
        self.llm_tokens = Counter("keel_llm_tokens", "Tokens settled on budgets, by direction (input, output)",
                                  [*MODEL, "direction"], registry=r)
        self.llm_cost = Counter("keel_llm_cost_usd", "Cost settled on budgets, in US dollars", MODEL, registry=r)
        self.llm_ttft = Histogram("keel_llm_time_to_first_token_seconds", "From the first attempt to the first "
                                  "token (retries and fallbacks included)", ["provider", "model"],
                                  buckets=LATENCY_BUCKETS, registry=r)
        self.llm_duration = Histogram("keel_llm_request_duration_seconds", "Model requests, start to end",
                                      ["provider", "model"], buckets=LATENCY_BUCKETS, registry=r)
        self.llm_circuit = Gauge("keel_llm_circuit_open", "1 while the model's circuit breaker is open",
                                 ["model"], multiprocess_mode="livemax", registry=r)
        self.soft_capped = Counter("keel_budget_soft_capped", "Requests past the plan's soft cap, sent to its "
                                   "cheaper model", registry=r)
        self.budget_refusals = Counter("keel_budget_refusals", "Requests refused at a hard cap", ["limit"],
                                       registry=r)
        self.retrieval_latency = Histogram("keel_retrieval_seconds", "Searches, by mode", ["mode"],
                                           buckets=FAST_BUCKETS, registry=r)
        self.retrieval_candidates = Histogram("keel_retrieval_candidates", "Candidates the retrievers gave a "
                                              "search", ["mode"], buckets=COUNT_BUCKETS, registry=r)
        self.retrieval_empty = Counter("keel_retrieval_empty", "Searches that found nothing", ["mode"], registry=r)
        self.embedded_chunks = Counter("keel_embedded_chunks", "Chunks embedded", ["model"], registry=r)
        self.embedding_latency = Histogram("keel_embedding_batch_seconds", "Embedding one batch of chunks",
                                           ["model"], buckets=FAST_BUCKETS, registry=r)
        self.ratings = Counter("keel_answer_ratings", "Answers rated by their owners, by template version and "
                               "rating (up, down)", ["template", "rating"], registry=r)
        self.rate_refusals = Counter("keel_rate_limit_refusals", "Requests refused by a rate limit", ["scope"],
                                    registry=r)
        # set at each scrape of the API (the metrics endpoint reads them); with several API processes the
        # database's figures are the latest read, and each process's own figures are summed
        latest = {"multiprocess_mode": "mostrecent", "registry": r}
        self.documents = Gauge("keel_documents", "Documents by status", ["status"], **latest)
        self.chunks = Gauge("keel_chunks", "Chunks of ready documents", **latest)
        self.open_reservations = Gauge("keel_budget_reservations_open", "Budget reservations not settled yet",
                                       **latest)
        self.unsent_jobs = Gauge("keel_jobs_unsent", "Jobs committed but not handed to the broker yet",
                                 **latest)
        self.queue_depth = Gauge("keel_job_queue_depth", "Messages waiting for a worker", ["queue"], **latest)
        self.queue_age = Gauge("keel_job_queue_oldest_age_seconds", "How long the oldest waiting message has "
                               "waited", ["queue"], **latest)
        self._queues: set[str] = set()
        self.db_pool = Gauge("keel_db_pool_connections", "The API process's database pool: in_use, idle, waiting "
                             "(requests waiting for a connection)", ["state"], multiprocess_mode="livesum",
                             registry=r)
        self.live_answers = Gauge("keel_live_answers", "Answers being generated by this process",
                                  multiprocess_mode="livesum", registry=r)

    def model_call(self, provider: str, model: str, template: str, outcome: str, seconds: float,
                   first_token_seconds: float | None) -> None:
        self.llm_requests.labels(provider, model, template, outcome).inc()
        self.llm_duration.labels(provider, model).observe(seconds)
        if first_token_seconds is not None:
            self.llm_ttft.labels(provider, model).observe(first_token_seconds)

    def model_error(self, provider: str, model: str, template: str, code: str) -> None:
        self.llm_errors.labels(provider, model, template, code).inc()

    def model_retry(self, provider: str, model: str, template: str) -> None:
        self.llm_retries.labels(provider, model, template).inc()

    def model_fallback(self, template: str, from_model: str, to_model: str) -> None:
        self.llm_fallbacks.labels(template, from_model, to_model).inc()

    def model_usage(self, provider: str, model: str, template: str, usage: Usage, cost_usd: float) -> None:
        self.llm_tokens.labels(provider, model, template, "input").inc(usage.prompt_tokens)
        self.llm_tokens.labels(provider, model, template, "output").inc(usage.completion_tokens)
        self.llm_cost.labels(provider, model, template).inc(cost_usd)

    def circuit(self, model: str, is_open: bool) -> None:
        self.llm_circuit.labels(model).set(1 if is_open else 0)

    def budget_soft_capped(self) -> None:
        self.soft_capped.inc()

    def budget_refused(self, limit: str) -> None:
        self.budget_refusals.labels(limit).inc()

    def retrieval(self, mode: str, seconds: float, candidates: int, results: int) -> None:
        self.retrieval_latency.labels(mode).observe(seconds)
        self.retrieval_candidates.labels(mode).observe(candidates)
        if results == 0:
            self.retrieval_empty.labels(mode).inc()

    def embedded(self, model: str, chunks: int, seconds: float) -> None:
        self.embedded_chunks.labels(model).inc(chunks)
        self.embedding_latency.labels(model).observe(seconds)

    def answer_rated(self, template: str, rating: str) -> None:
        self.ratings.labels(template, rating).inc()

    def rate_limited(self, scope: str) -> None:
        self.rate_refusals.labels(scope).inc()

    def operations(self, found: Operations) -> None:
        for status in ("queued", "processing", "ready", "failed"):
            self.documents.labels(status).set(found.documents.get(status, 0))
        self.chunks.set(found.chunks)
        self.open_reservations.set(found.open_reservations)
        self.unsent_jobs.set(found.unsent_jobs)
        waiting = {queue.queue: queue for queue in found.queues}
        self._queues |= set(waiting)  # a queue seen once stays, at 0 when nothing waits
        for name in self._queues:
            queue = waiting.get(name)
            self.queue_depth.labels(name).set(queue.messages if queue else 0)
            self.queue_age.labels(name).set(queue.oldest_age_seconds if queue else 0)

    def process(self, pool: dict[str, int], live_answers: int) -> None:
        for state, connections in pool.items():
            self.db_pool.labels(state).set(connections)
        self.live_answers.set(live_answers)
