"""The async engine: asyncpg, with `ag_catalog` on the search path of every connection."""

from __future__ import annotations

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

# A startup parameter, not a SET: asyncpg's pool runs RESET ALL on release, which would drop it.
SERVER_SETTINGS = {"search_path": "public,ag_catalog", "application_name": "keel"}


def make_engine(url: str, pool_size: int = 10, pool_timeout: float = 30.0) -> AsyncEngine:
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=pool_timeout,
        pool_recycle=1800,
        connect_args={"server_settings": SERVER_SETTINGS},
    )
    event.listen(engine.sync_engine, "checkout", _skip_closed_connection)
    return engine


def _skip_closed_connection(dbapi_connection, record, proxy) -> None:
    """A free liveness check instead of `pool_pre_ping` (a round trip on every checkout): asyncpg marks a
    connection closed as soon as the server goes away (restart, idle kill), and the pool then retries with
    a fresh one. A connection cut while checked out still fails that one request and is discarded."""
    if dbapi_connection.driver_connection.is_closed():
        raise exc.DisconnectionError("the pooled connection was closed by the server")


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def make_read_session_factory(engine: AsyncEngine) -> async_sessionmaker:
    """Sessions for single-read use cases (authentication, authorization, entitlements): autocommit, so a
    read costs one round trip instead of BEGIN + query + ROLLBACK."""
    return async_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False,
                              autoflush=False)


def pool_usage(engine: AsyncEngine) -> dict[str, int]:
    """The connection pool now: connections lent out, idle in the pool, and requests waiting for one."""
    pool = engine.pool
    queue = getattr(getattr(pool, "_pool", None), "_queue", None)  # the asyncio.Queue behind the pool
    return {"in_use": pool.checkedout(), "idle": pool.checkedin(),  # type: ignore[attr-defined]
            "waiting": len(getattr(queue, "_getters", ()))}  # asyncio's own waiters: no public count exists
