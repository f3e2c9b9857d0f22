"""What every domain's wiring stands on: settings, time, the database, the job queue, and the two services
every domain asks — identity's access policy and billing's entitlements — with those two domains' units of work."""

from __future__ import annotations

from datetime import timedelta

from dependency_injector import containers, providers
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from src.adapters.clock import SystemClock
from src.adapters.postgres.billing.unit_of_work import PgBillingUnitOfWork
from src.adapters.postgres.engine import make_engine, make_read_session_factory, make_session_factory
from src.adapters.postgres.identity.unit_of_work import PgIdentityUnitOfWork
from src.adapters.queue.broker import make_broker
from src.adapters.queue.job_queue import DramatiqJobQueue
from src.adapters.telemetry.prometheus import PrometheusTelemetry
from src.adapters.telemetry.tracing import NoTracing, OtelTracing, instrument_database
from src.config import Settings
from src.core.billing.entitlements import BillingConfig, CheckEntitlement
from src.core.billing.plans import Catalogue, load_catalogue
from src.core.identity import authorize as authz


def plan_catalogue(settings: Settings) -> Catalogue:
    plans_json = settings.plans_file.read_text() if settings.plans_file else None
    return load_catalogue(plans_json, settings.price_ids())


def tracing_for(settings: Settings, engine: AsyncEngine) -> OtelTracing | NoTracing:
    """Spans when tracing is on (the process's provider is configured by main / worker_main)."""
    if not settings.tracing_on:
        return NoTracing()
    instrument_database(engine)
    return OtelTracing()


def billing_config(settings: Settings) -> BillingConfig:
    return BillingConfig(grace_period=timedelta(days=settings.billing_grace_days))


class Foundation(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    engine = providers.Singleton(
        make_engine, url=settings.provided.sqlalchemy_url.call(), pool_size=settings.provided.db_pool_size,
        pool_timeout=settings.provided.db_pool_timeout_seconds
    )
    session_factory = providers.Singleton(make_session_factory, engine)
    # what the use cases report, as this process's Prometheus metrics (one registry per container), and
    # spans when tracing is on
    metrics_registry = providers.Singleton(CollectorRegistry, auto_describe=True)
    tracing = providers.Singleton(tracing_for, settings, engine)
    telemetry = providers.Singleton(PrometheusTelemetry, metrics_registry, tracing)
    broker = providers.Singleton(make_broker, url=settings.provided.broker_connection_url,
                                 heartbeat_seconds=settings.provided.worker_heartbeat_seconds,
                                 dead_after_seconds=settings.provided.worker_dead_after_seconds)
    jobs = providers.Singleton(DramatiqJobQueue, broker)
    # for use cases that only read, once per request (authentication, authorization, entitlements)
    read_session_factory = providers.Singleton(make_read_session_factory, engine)
    identity_uow = providers.Factory(PgIdentityUnitOfWork, session_factory, jobs)
    identity_reads = providers.Factory(PgIdentityUnitOfWork, read_session_factory, jobs)
    billing_uow = providers.Factory(PgBillingUnitOfWork, session_factory, jobs)
    billing_reads = providers.Factory(PgBillingUnitOfWork, read_session_factory, jobs)
    # who may do what: identity's policy, asked by every domain's use cases
    access = providers.Singleton(authz.Authorize, identity_reads.provider)
    # billing: what other domains check
    catalogue = providers.Singleton(plan_catalogue, settings)
    billing = providers.Singleton(billing_config, settings)
    entitlements = providers.Factory(CheckEntitlement, billing_reads.provider, catalogue, clock)
