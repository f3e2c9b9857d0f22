"""Retention: the prune job deletes each kind of row once past its horizon, in batches, keeps what is newer
(and what a horizon of 0 keeps forever), and a second run prunes nothing more."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from src.core.system.retention import PruneExpiredData, RetentionPolicy
from src.ports.system import Prunable
from tests.conversation_helpers import account

NOW = datetime.now(UTC)
OLD, RECENT = NOW - timedelta(days=500), NOW - timedelta(hours=2)
ROWS = {  # table: (insert for one row at :at, how this test finds its rows)
    "stripe_events": ("INSERT INTO stripe_events (id, type, created, status, payload, received_at, processed_at) "
                      "VALUES (:key, 'invoice.paid', 0, 'processed', '{}', :at, :at)", "id LIKE :tag"),
    "audit_events": ("INSERT INTO audit_events (id, at, action, subject) VALUES (gen_random_uuid(), :at, "
                     "'test.retention', :key)", "subject LIKE :tag"),
    "email_outbox": ("INSERT INTO email_outbox (id, recipient, subject, body, created_at, sent_at) VALUES "
                     "(gen_random_uuid(), :key, 's', 'b', :at, :at)", "recipient LIKE :tag"),
    "usage_records": ("INSERT INTO usage_records (id, workspace_id, message_id, model, day, reserved_tokens, "
                      "settled_at, created_at) VALUES (gen_random_uuid(), :workspace, gen_random_uuid(), :key, "
                      "CAST(:at AS date), 0, :at, :at)", "model LIKE :tag"),
    "auth_attempts": ("INSERT INTO auth_attempts (key, attempts, window_started_at, last_attempt_at) VALUES "
                      "(:key, 1, :at, :at)", "key LIKE :tag"),
    "sessions": ("INSERT INTO sessions (id, user_id, created_at, expires_at, user_agent) VALUES "
                 "(gen_random_uuid(), :user, :at, :at, :key)", "user_agent LIKE :tag"),
    "worker_probes": ("INSERT INTO worker_probes (id, requested_at, processed_at, processed_by) VALUES "
                      "(gen_random_uuid(), :at, :at, :key)", "processed_by LIKE :tag"),
}


async def counts(container, tag: str) -> dict[str, int]:
    async with container.engine().connect() as db:
        return {table: (await db.execute(text(f"SELECT count(*) FROM {table} WHERE {where}"),
                                          {"tag": f"{tag}%"})).scalar_one()
                for table, (_, where) in ROWS.items()}


async def test_old_rows_go_in_batches_recent_ones_stay_and_a_second_run_prunes_nothing(container):
    user_id, workspace_id = await account(container)
    tag = f"retention-{uuid.uuid4().hex[:8]}"
    async with container.engine().begin() as db:
        for insert, _ in ROWS.values():
            for number, at in enumerate([OLD, OLD, OLD, RECENT]):
                await db.execute(text(insert), {"key": f"{tag}-{number}", "at": at, "user": user_id,
                                                "workspace": workspace_id})
    assert set((await counts(container, tag)).values()) == {4}

    policy = RetentionPolicy(webhook_events_days=90, audit_days=365, sent_email_days=30, usage_detail_days=0)
    prune = PruneExpiredData(container.system_uow, container.clock(), policy, batch=2)
    pruned = await prune.execute()
    assert Prunable.USAGE_DETAIL not in pruned  # 0 days: kept forever
    left = await counts(container, tag)
    assert left == {**{table: 1 for table in ROWS}, "usage_records": 4}, left
    assert all(pruned[kind] >= 3 for kind in pruned), pruned  # this test's three old rows at least, by twos

    await prune.execute()  # (the shared test database may hold other tests' old rows: only ours are counted)
    assert await counts(container, tag) == left
