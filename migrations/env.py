"""Alembic environment (async): runs migrations over asyncpg with Keel's settings."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

from src.adapters.postgres.engine import SERVER_SETTINGS
from src.adapters.postgres.models import Base
from src.config import load_settings

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    return config.attributes.get("url") or load_settings().sqlalchemy_url()


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    # Tables other tools own (the Dramatiq queue, AGE's catalog) are not ours to diff.
    return not (type_ == "table" and reflected and compare_to is None and name not in target_metadata.tables)


def run_sync_migrations(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_async_engine(database_url(), connect_args={"server_settings": SERVER_SETTINGS})
    async with engine.connect() as connection:
        await connection.run_sync(run_sync_migrations)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_async_migrations())
