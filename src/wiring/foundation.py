"""What every domain's wiring stands on: settings, time, the database and its units of work, the job queue,
the access policy every use case asks, and the entitlements other domains check."""

from __future__ import annotations

from datetime import timedelta

from dependency_injector import containers, providers

from src.adapters.clock import SystemClock
from src.adapters.postgres.engine import make_engine, make_read_session_factory, make_session_factory
from src.adapters.postgres.search import PgSearchSettings
from src.adapters.postgres.unit_of_work import SqlAlchemyUnitOfWork
from src.adapters.queue.broker import make_broker
from src.adapters.queue.job_queue import DramatiqJobQueue
from src.config import Settings
from src.core.billing.entitlements import BillingConfig, CheckEntitlement
from src.core.billing.plans import Catalogue, load_catalogue
from src.core.identity import authorize as authz


def plan_catalogue(settings: Settings) -> Catalogue:
    plans_json = settings.plans_file.read_text() if settings.plans_file else None
    return load_catalogue(plans_json, settings.price_ids())


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
    broker = providers.Singleton(make_broker, url=settings.provided.broker_connection_url)
    jobs = providers.Singleton(DramatiqJobQueue, broker)
    search_settings = providers.Singleton(PgSearchSettings, ef_search=settings.provided.hnsw_ef_search)
    uow = providers.Factory(SqlAlchemyUnitOfWork, session_factory=session_factory, jobs=jobs,
                            search_settings=search_settings, graph_store=settings.provided.graph_store)
    # for use cases that only read, once per request (authentication, authorization, entitlements)
    read_uow = providers.Factory(SqlAlchemyUnitOfWork,
                                 session_factory=providers.Singleton(make_read_session_factory, engine),
                                 jobs=jobs, search_settings=search_settings)
    # who may do what: identity's policy, asked by every domain's use cases
    access = providers.Singleton(authz.Authorize, read_uow.provider)
    # billing: what other domains check
    catalogue = providers.Singleton(plan_catalogue, settings)
    billing = providers.Singleton(billing_config, settings)
    entitlements = providers.Factory(CheckEntitlement, read_uow.provider, catalogue, clock)
