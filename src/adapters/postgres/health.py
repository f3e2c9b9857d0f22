"""Database health: reachable, and both extensions Keel needs (vector, age) installed and loadable."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from src.ports.shared import ComponentHealth

REQUIRED_EXTENSIONS = ("vector", "age")


class PostgresHealthProbe:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def check(self) -> list[ComponentHealth]:
        try:
            async with self._engine.connect() as connection:
                rows = await connection.execute(text("SELECT extname, extversion FROM pg_extension"))
                installed = dict(rows.all())
                # Loading proves the shared libraries are there, not only the catalog rows.
                if "age" in installed:
                    await connection.execute(text("SELECT count(*) FROM ag_catalog.ag_graph"))
                if "vector" in installed:
                    await connection.execute(text("SELECT '[1,2]'::vector <=> '[2,1]'::vector"))
        except Exception as exc:  # unreachable or broken: report it, never raise out of a health check
            return [ComponentHealth("database", False, _one_line(exc))]
        checks = [ComponentHealth("database", True, "reachable")]
        for name in REQUIRED_EXTENSIONS:
            version = installed.get(name)
            detail = f"{name} {version}" if version else f"extension {name} is not installed; run `keel migrate`"
            checks.append(ComponentHealth(f"extension:{name}", version is not None, detail))
        return checks


def _one_line(exc: Exception) -> str:
    message = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return message[0] if message else type(exc).__name__
