"""Operational counts for the metrics endpoint, read in one round trip each: documents by status, chunks of
ready documents, open budget reservations, the job outbox, and (with the Postgres broker) the queues."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from src.ports.system import Operations, QueueDepth

QUEUE_SCHEMA = "dramatiq"  # where the Postgres broker keeps its queue (src/adapters/queue/broker.py)

_COUNTS = text("""
    SELECT (SELECT coalesce(json_object_agg(status, n), '{}') FROM
              (SELECT status, count(*) AS n FROM documents GROUP BY status) AS by_status) AS documents,
           (SELECT coalesce(sum(chunk_count), 0) FROM documents WHERE status = 'ready') AS chunks,
           (SELECT count(*) FROM usage_records WHERE settled_at IS NULL) AS open_reservations,
           (SELECT count(*) FROM job_outbox) AS unsent_jobs,
           to_regclass(:queue_table) IS NOT NULL AS has_queue
""")
# every queue the table knows (and the default one), waiting or not: a queue with nothing waiting reads 0
_QUEUES = text(f"""
    SELECT name, count(q.queue_name), coalesce(extract(epoch FROM now() - min(q.available_at)), 0)
    FROM (SELECT DISTINCT queue_name FROM {QUEUE_SCHEMA}.queue UNION SELECT 'default') AS known(name)
    LEFT JOIN {QUEUE_SCHEMA}.queue AS q
      ON q.queue_name = known.name AND q.state = 'queued' AND q.available_at <= now()
    GROUP BY name
""")


class PgOperationsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def read(self) -> Operations:
        counts = (await self._session.execute(_COUNTS, {"queue_table": f"{QUEUE_SCHEMA}.queue"})).one()
        queues = ()
        if counts.has_queue:  # the Postgres broker: its table is in this database
            queues = tuple(QueueDepth(name, int(messages), max(float(age), 0.0))
                           for name, messages, age in (await self._session.execute(_QUEUES)).all())
        return Operations({str(status): int(n) for status, n in counts.documents.items()}, int(counts.chunks),
                          int(counts.open_reservations), int(counts.unsent_jobs), queues)
