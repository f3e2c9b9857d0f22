"""The async engine: asyncpg, with `ag_catalog` on the search path of every connection."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

# A startup parameter, not a SET: asyncpg's pool runs RESET ALL on release, which would drop it.
SERVER_SETTINGS = {"search_path": "public,ag_catalog", "application_name": "keel"}


def make_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"server_settings": SERVER_SETTINGS},
    )


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
