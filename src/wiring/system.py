"""System wiring: health, worker probes, periodic jobs and the job outbox's relay."""

from __future__ import annotations

from datetime import timedelta

from dependency_injector import providers

from src.adapters.postgres.health import PostgresHealthProbe
from src.adapters.postgres.system.unit_of_work import PgSystemUnitOfWork
from src.config import Settings
from src.core.billing.reconcile import RECONCILE_JOB
from src.core.billing.webhooks import APPLY_JOB
from src.core.conversation.progress import RECOVER_JOB
from src.core.knowledge.ingestion import KEYWORD_INDEX_JOB, REQUEUE_JOB
from src.core.system.health import CheckHealth
from src.core.system.operations import ReadOperations
from src.core.system.probes import GetWorkerProbe, ProcessWorkerProbe, RequestWorkerProbe, WatchWorkerProbe
from src.core.system.retention import PRUNE_JOB, PruneExpiredData, RetentionPolicy
from src.core.system.schedules import EnqueueDueJobs, RelayJobs
from src.ports.system import Schedule
from src.wiring.foundation import Foundation


def schedules(settings: Settings) -> list[Schedule]:
    found = []
    if settings.billing_reconcile_hour_utc >= 0:
        found.append(Schedule(RECONCILE_JOB, timedelta(days=1), timedelta(hours=settings.billing_reconcile_hour_utc)))
    if settings.stripe_webhooks_apply == "worker":  # what a lost wake-up left, and failed events' retries
        found.append(Schedule(APPLY_JOB, timedelta(minutes=1)))
    if settings.keyword_index_check_minutes > 0:
        found.append(Schedule(KEYWORD_INDEX_JOB, timedelta(minutes=settings.keyword_index_check_minutes)))
    found.append(Schedule(RECOVER_JOB, timedelta(minutes=1)))  # answers whose process died
    found.append(Schedule(REQUEUE_JOB, timedelta(minutes=5)))  # documents whose ingestion job was lost
    found.append(Schedule(PRUNE_JOB, timedelta(hours=1)))  # data past its retention horizon
    return found


class SystemWiring(Foundation):
    system_uow = providers.Factory(PgSystemUnitOfWork, Foundation.session_factory, Foundation.jobs)
    check_health = providers.Factory(CheckHealth, probes=providers.List(
        providers.Factory(PostgresHealthProbe, Foundation.engine)))
    request_worker_probe = providers.Factory(RequestWorkerProbe, uow=system_uow.provider, clock=Foundation.clock,
                                             access=Foundation.access)
    process_worker_probe = providers.Factory(ProcessWorkerProbe, uow=system_uow.provider, clock=Foundation.clock)
    get_worker_probe = providers.Factory(GetWorkerProbe, uow=system_uow.provider, access=Foundation.access)
    watch_worker_probe = providers.Factory(WatchWorkerProbe, get=get_worker_probe)
    enqueue_due_jobs = providers.Factory(EnqueueDueJobs, system_uow.provider, Foundation.clock,
                                         providers.Callable(schedules, Foundation.settings))
    read_operations = providers.Factory(ReadOperations, system_uow.provider, Foundation.settings.provided.metrics_token)
    relay_jobs = providers.Factory(RelayJobs, system_uow.provider, Foundation.jobs, Foundation.clock)
    retention_policy = providers.Singleton(
        RetentionPolicy, webhook_events_days=Foundation.settings.provided.retention_webhook_events_days,
        audit_days=Foundation.settings.provided.retention_audit_days,
        sent_email_days=Foundation.settings.provided.retention_sent_email_days,
        usage_detail_days=Foundation.settings.provided.retention_usage_detail_days)
    prune_expired_data = providers.Factory(PruneExpiredData, system_uow.provider, Foundation.clock, retention_policy)
