"""The ASGI app: GraphQL (HTTP + websockets) at /graphql, /healthz, /metrics, POST /webhooks/stripe.
uvicorn runs `create_app`."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route, WebSocketRoute
from starlette.types import Scope
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from src.adapters.logs import configure_logging
from src.adapters.postgres.engine import pool_usage
from src.adapters.rest.admission import admitted
from src.adapters.rest.ai_sdk import ai_sdk_routes
from src.adapters.rest.body_limits import BodyLimits
from src.adapters.rest.console import console_routes
from src.adapters.rest.health import health_endpoint
from src.adapters.rest.metrics import HttpMetrics, metrics_endpoint, multiprocess_metrics
from src.adapters.rest.openai_api import openai_routes
from src.adapters.rest.request_context import RequestContext
from src.adapters.rest.stripe_webhooks import stripe_webhook_endpoint
from src.adapters.telemetry.tracing import configure_tracing
from src.config import Settings, load_settings
from src.container import Container, build_container, services_of, shutdown
from src.graphql.app import KeelGraphQL
from src.graphql.limits import GraphQLLimits
from src.graphql.metrics import GraphQLMetrics
from src.ports.shared import StorageUnavailable


async def every(seconds: float, use_case: Callable[[], Any]) -> None:
    """Runs the use case every `seconds` until cancelled; a failed run is logged and the next one tries again."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await use_case().execute()
        except StorageUnavailable as exc:  # expected while the database is away: one line, no traceback
            logging.getLogger(__name__).warning("a periodic run found the database away (%s); the next one "
                                                "tries again", exc)
        except Exception:
            logging.getLogger(__name__).exception("a periodic run failed; the next one tries again")


async def keep_fresh(refresh: Callable[[], None], seconds: float = 5.0) -> None:
    while True:
        refresh()
        await asyncio.sleep(seconds)


async def warm_embeddings(container: Container) -> None:
    """The first search would otherwise wait seconds for the local embedding model to load."""
    started = time.monotonic()
    try:
        loaded = await asyncio.to_thread(container.embedders().warm)
    except Exception:
        logging.getLogger(__name__).exception("could not load the embedding model; searches will try again")
        return
    if loaded:
        logging.getLogger(__name__).info("embedding model %s loaded in %.1f s", loaded, time.monotonic() - started)


RELAY_SECONDS = 5.0


def graphql_limits(settings: Settings) -> GraphQLLimits:
    return GraphQLLimits(max_depth=settings.graphql_max_depth, max_aliases=settings.graphql_max_aliases,
                         max_tokens=settings.graphql_max_tokens, max_cost=settings.graphql_max_cost,
                         timeout_seconds=settings.graphql_timeout_seconds, ws_max_operations=settings.ws_max_operations,
                         ws_max_per_caller=settings.ws_max_per_caller, introspection=settings.introspection_on,
                         suggestions=settings.suggestions_on)


def body_limit(settings: Settings) -> Callable[[Scope], int]:
    def limit_for(scope: Scope) -> int:
        content_type = dict(scope["headers"]).get(b"content-type", b"")
        if scope["path"] == "/graphql" and content_type.startswith(b"multipart/form-data"):
            return settings.max_document_bytes + settings.max_request_bytes
        return settings.max_request_bytes

    return limit_for


def edge_middleware(settings: Settings, origins: list[str], registry: CollectorRegistry) -> list[Middleware]:
    """Outermost first: the request id, the client's real address (behind trusted proxies only), CORS, body
    limits, metrics."""
    middleware = [Middleware(RequestContext)]
    if settings.trusted_proxy_list():
        middleware.append(Middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxy_list()))
    middleware += [
        Middleware(CORSMiddleware, allow_origins=origins, allow_credentials=settings.cors_credentials,
                   allow_methods=["GET", "POST"],
                   allow_headers=["authorization", "content-type", "x-api-key", "x-request-id"],
                   expose_headers=["RateLimit", "RateLimit-Policy", "Retry-After", "X-Request-ID"], max_age=600),
        Middleware(BodyLimits, limit_for=body_limit(settings)),
        Middleware(HttpMetrics, registry=registry),
    ]
    return middleware


def settle_garbage_collection(gen0_threshold: int) -> None:
    """Once the API has started. What start-up built (modules, schema, container: ~350k objects) lives as long
    as the process, so full collections stop scanning it; young collections run every `gen0_threshold`
    allocations instead of Python's 700 (most of a stream's objects die by reference count before that).
    Measured at 300 streams: each full collection had paused every stream ~180 ms; added inter-token p95
    141-148 ms instead of 190-209, ~6% less CPU, the same peak memory."""
    gc.freeze()
    if gen0_threshold > 0:
        gc.set_threshold(gen0_threshold, 20, 10)


def serving_app() -> Starlette:
    """The app `keel serve` runs in each API process."""
    settings = load_settings()
    return create_app(settings, on_started=lambda: settle_garbage_collection(settings.gc_gen0_threshold))


def create_app(settings: Settings | None = None, container: Container | None = None,
               on_started: Callable[[], None] = lambda: None) -> Starlette:
    settings = settings or load_settings()
    container = container or build_container(settings)
    configure_logging(settings.log_level, settings.log_format)  # JSON lines with the request's ids, redacted
    if settings.tracing_on:
        configure_tracing("keel-api")
    services = services_of(container)
    origins = settings.cors_origin_list()
    registry = CollectorRegistry(auto_describe=True)  # this app's HTTP and GraphQL metrics, and
    registry.register(container.metrics_registry())  # what the use cases report
    graphql_metrics = GraphQLMetrics(registry, container.telemetry())
    graphql = KeelGraphQL(services, graphiql=settings.graphiql_on, limits=graphql_limits(settings),
                          allowed_origins=origins, metrics=graphql_metrics)

    def process_gauges() -> None:
        graphql_metrics.websockets.set(graphql.sockets.count())
        container.telemetry().process(pool_usage(container.engine()), container.live_answers().unfinished())

    async def refresh_metrics(token: str | None) -> None:
        """At each scrape: the operator's token first, then the gauges read now."""
        services.read_operations().check(token)
        process_gauges()
        container.telemetry().operations(await services.read_operations().execute(token))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        warming = asyncio.create_task(warm_embeddings(container))  # serving meanwhile; a search waits for it
        try:  # starts re-embedding when the configured model changed; the API serves either way
            await container.sync_embedding_space().execute()
        except Exception:
            logging.getLogger(__name__).exception("could not check the embedding space")
        try:
            await container.check_keyword_index().execute()
        except Exception:
            logging.getLogger(__name__).exception("could not check the keyword index")
        container.chat_models()  # the provider clients are built now, not while the first answer waits
        feed = container.answer_feed()  # answers generated here, followed from other API processes
        feed.on_wanted(container.relay_answers().wanted)
        feed.on_stop(container.relay_answers().stop)
        await feed.start()
        checkpoints = asyncio.create_task(every(settings.chat_checkpoint_seconds, container.save_answer_progress))
        relay = asyncio.create_task(every(RELAY_SECONDS, container.relay_jobs))  # jobs a broker outage held back
        sockets = asyncio.create_task(graphql.sockets.watch(container.find_ended_credentials,
                                                            settings.ws_recheck_seconds))
        # one of several API processes: its own gauges are kept fresh for whichever process answers a scrape
        gauges = asyncio.create_task(keep_fresh(process_gauges) if multiprocess_metrics() else asyncio.sleep(0))
        on_started()
        yield
        gauges.cancel()
        warming.cancel()
        checkpoints.cancel()
        sockets.cancel()
        relay.cancel()
        await container.live_answers().stop_all()  # unfinished answers are stored as cancelled
        await feed.close()
        await shutdown(container)

    app = Starlette(
        routes=[
            *console_routes(services.admission),  # the reference console at /
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", admitted(health_endpoint(services.check_health), services.admission, "healthz",
                                        per_address=False)),
            Route("/metrics", admitted(metrics_endpoint(registry, refresh_metrics), services.admission, "metrics",
                                       per_address=False)),
            *openai_routes(services),  # the OpenAI-compatible API under /v1
            *ai_sdk_routes(services),  # the AI SDK's chat stream for useChat frontends
            Route("/webhooks/stripe", admitted(stripe_webhook_endpoint(
                settings.stripe_webhook_secret, settings.stripe_webhook_tolerance_seconds,
                services.accept_stripe_event if settings.stripe_webhooks_apply == "worker"
                else services.handle_stripe_event), services.admission, "stripeWebhook", per_address=False),
                  methods=["POST"]),
        ],
        middleware=edge_middleware(settings, origins, registry),
        lifespan=lifespan,
    )
    app.state.container = container
    app.state.sockets = graphql.sockets
    return app
