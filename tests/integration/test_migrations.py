"""Migrations: every revision upgrades, downgrades and upgrades again; the models match the schema."""

from __future__ import annotations

import asyncio

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from src.adapters.postgres.base import owned_by_keel
from src.adapters.postgres.engine import SERVER_SETTINGS
from src.adapters.postgres.tables import Base
from src.cli.migrate import alembic_config
from src.config import Settings
from tests.conftest import fresh_database


@pytest.fixture(scope="module")
def scratch(settings: Settings):
    """A database of its own, so moving the schema up and down never disturbs other tests."""
    fresh = fresh_database(settings, "migrations", migrate=False)
    return settings, fresh.db_name


def _run(coroutine):
    # Alembic's env.py runs its own event loop, so these tests are plain (sync) functions.
    return asyncio.run(coroutine)


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url, connect_args={"server_settings": SERVER_SETTINGS})
    async with engine.connect() as connection:
        rows = await connection.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
        extensions = await connection.execute(text("SELECT extname FROM pg_extension"))
        found = {row[0] for row in rows} | {f"ext:{row[0]}" for row in extensions}
    await engine.dispose()
    return found


def test_stairway_up_down_up(scratch):
    settings, name = scratch
    config = alembic_config(settings, name)
    revisions = list(reversed(list(ScriptDirectory.from_config(config).walk_revisions())))
    assert revisions, "no migrations found"
    for revision in revisions:
        command.upgrade(config, revision.revision)
        command.downgrade(config, revision.down_revision or "base")
        command.upgrade(config, revision.revision)
    assert {"users", "workspaces", "entitlements", "documents", "messages", "ext:vector", "ext:age"} <= _run(
        _tables(settings.sqlalchemy_url(name))
    )
    command.downgrade(config, "base")
    assert _run(_tables(settings.sqlalchemy_url(name))) == {"alembic_version", "ext:plpgsql"}


def test_models_and_migrations_agree(scratch):
    settings, name = scratch
    config = alembic_config(settings, name)
    command.upgrade(config, "head")

    async def diff():
        url = settings.sqlalchemy_url(name)
        engine = create_async_engine(url, connect_args={"server_settings": SERVER_SETTINGS})
        async with engine.connect() as connection:
            options = {"compare_server_default": True, "include_object": owned_by_keel}
            result = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts=options), Base.metadata)
            )
        await engine.dispose()
        return result

    differences = [d for d in _run(diff()) if not (d[0] == "remove_table" and d[1].name == "alembic_version")]
    assert differences == []


LEDGER = """
INSERT INTO workspaces (id, name) VALUES ('00000000-0000-4000-8000-00000000000a', 'w');
INSERT INTO users (id, email) VALUES ('00000000-0000-4000-8000-00000000000b', 'u@example.com');
INSERT INTO usage_records (id, workspace_id, user_id, message_id, day, reserved_tokens, prompt_tokens,
                           completion_tokens, cost_usd, settled_at) VALUES
 (gen_random_uuid(), '00000000-0000-4000-8000-00000000000a', '00000000-0000-4000-8000-00000000000b',
  gen_random_uuid(), '2026-11-20', 900, 100, 20, 0.5, now()),
 (gen_random_uuid(), '00000000-0000-4000-8000-00000000000a', '00000000-0000-4000-8000-00000000000b',
  gen_random_uuid(), '2026-11-20', 700, 0, 0, 0, NULL),
 (gen_random_uuid(), '00000000-0000-4000-8000-00000000000a', NULL,
  gen_random_uuid(), '2026-11-20', 50, 30, 3, 0.25, now())"""


def test_day_totals_are_built_from_the_existing_ledger(scratch):
    """0010: settled records count their actual tokens, unsettled ones their reservation; the workspace's
    row counts every record, the user's row only theirs."""
    settings, name = scratch
    config = alembic_config(settings, name)
    command.downgrade(config, "base")
    command.upgrade(config, "0009")

    async def execute(*statements: str) -> list[tuple]:
        """The rows of the last statement."""
        engine = create_async_engine(settings.sqlalchemy_url(name), connect_args={"server_settings": SERVER_SETTINGS})
        async with engine.begin() as connection:
            for statement in statements:
                result = await connection.exec_driver_sql(statement)
            rows = [tuple(row) for row in result] if result.returns_rows else []
        await engine.dispose()
        return rows

    _run(execute(*LEDGER.split(";")))
    command.upgrade(config, "0010")
    totals = _run(execute("SELECT subject_id::text, tokens, cost_usd, calls FROM usage_days ORDER BY tokens"))
    assert totals == [("00000000-0000-4000-8000-00000000000b", 120 + 700, 0.5, 2),
                      ("00000000-0000-4000-8000-00000000000a", 120 + 700 + 33, 0.75, 3)]
    command.downgrade(config, "base")
