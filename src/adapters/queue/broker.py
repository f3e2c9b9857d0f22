"""Builds the Dramatiq broker from a URL: postgresql:// (default, same database), redis://, amqp://."""

from __future__ import annotations

import dramatiq
from dramatiq.asyncio import EventLoopThread, set_event_loop_thread
from dramatiq.middleware.asyncio import AsyncIO

QUEUE_SCHEMA = "dramatiq"


class DaemonAsyncIO(AsyncIO):
    """Dramatiq's AsyncIO middleware with a daemon event-loop thread. Its own thread is not a daemon, so
    when a second SIGTERM makes Dramatiq exit at once, that thread keeps the process alive forever."""

    def before_worker_boot(self, broker, worker) -> None:
        thread = EventLoopThread(self.logger)
        thread.daemon = True
        thread.start(timeout=1.0)
        set_event_loop_thread(thread)


def make_broker(url: str, heartbeat_seconds: float = 2.0, dead_after_seconds: float = 9.0) -> dramatiq.Broker:
    """With the Postgres broker, a worker silent for `dead_after_seconds` is dead: a live worker checks for
    dead ones every `heartbeat_seconds` (jittered) and requeues their jobs (the broker's own defaults, 60 s and
    30 s, left a killed worker's jobs waiting 75-94 s)."""
    if url.startswith(("redis://", "rediss://")):
        from dramatiq.brokers.redis import RedisBroker

        broker: dramatiq.Broker = RedisBroker(url=url, socket_connect_timeout=5)  # an unreachable Redis fails fast
    elif url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=url)
    else:
        import dramatiq_postgres
        import psycopg

        with psycopg.connect(url, autocommit=False) as connection, connection.cursor() as cursor:
            dramatiq_postgres.init(cursor, schema=QUEUE_SCHEMA)  # idempotent, serialised by a lock
            connection.commit()
        broker = dramatiq_postgres.PostgresBroker(url=url, schema=QUEUE_SCHEMA, results=False,
                                                  heartbeat_interval=heartbeat_seconds,
                                                  heartbeat_ttl=dead_after_seconds,
                                                  maintenance_interval=heartbeat_seconds)
    broker.add_middleware(DaemonAsyncIO())
    return broker
