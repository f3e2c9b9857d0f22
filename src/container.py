"""Composition root: the one place that picks adapters and wires them into the core's use cases."""

from __future__ import annotations

from dependency_injector import containers, providers

from src.adapters.clock import SystemClock
from src.adapters.postgres.engine import make_engine, make_session_factory
from src.adapters.postgres.health import PostgresHealthProbe
from src.adapters.postgres.unit_of_work import SqlAlchemyUnitOfWork
from src.adapters.queue.broker import make_broker
from src.adapters.queue.job_queue import DramatiqJobQueue
from src.config import Settings
from src.core.system.health import CheckHealth
from src.core.system.probes import GetWorkerProbe, ProcessWorkerProbe, RequestWorkerProbe, WatchWorkerProbe


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    engine = providers.Singleton(
        make_engine, url=settings.provided.sqlalchemy_url.call(), pool_size=settings.provided.db_pool_size
    )
    sessions = providers.Singleton(make_session_factory, engine)
    broker = providers.Singleton(make_broker, url=settings.provided.broker_connection_url)
    jobs = providers.Singleton(DramatiqJobQueue, broker)
    uow = providers.Factory(SqlAlchemyUnitOfWork, sessions=sessions, jobs=jobs)

    # system
    check_health = providers.Factory(CheckHealth, probes=providers.List(providers.Factory(PostgresHealthProbe, engine)))
    request_worker_probe = providers.Factory(RequestWorkerProbe, uow=uow.provider, clock=clock)
    process_worker_probe = providers.Factory(ProcessWorkerProbe, uow=uow.provider, clock=clock)
    get_worker_probe = providers.Factory(GetWorkerProbe, uow=uow.provider)
    watch_worker_probe = providers.Factory(WatchWorkerProbe, get=get_worker_probe)


def build_container(settings: Settings) -> Container:
    return Container(settings=settings)


async def shutdown(container: Container) -> None:
    """Release pooled connections; called when the app or a worker stops."""
    await container.engine().dispose()
