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

from src.adapters.postgres.engine import SERVER_SETTINGS
from src.adapters.postgres.models import Base
from src.adapters.postgres.models.base import owned_by_keel
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
