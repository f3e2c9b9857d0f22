"""Alembic environment (async): runs migrations over asyncpg with Keel's settings."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

from src.adapters.postgres.base import owned_by_keel
from src.adapters.postgres.engine import SERVER_SETTINGS
from src.adapters.postgres.tables import Base
from src.config import load_settings

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    return config.attributes.get("url") or load_settings().sqlalchemy_url()


def run_sync_migrations(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=owned_by_keel,
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
