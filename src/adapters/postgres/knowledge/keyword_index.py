"""Repairs the BM25 keyword index after a Postgres restart.

pg_textsearch 1.0 (the version the bundled Postgres ships) keeps part of the index's corpus statistics in
shared memory only: after a restart the index can answer every query with nothing, and keyword search
would quietly stop finding anything (fixed upstream in later releases, timescale/pg_textsearch#335, #350).
At start-up Keel asks the index for one chunk by that chunk's own text; when nothing comes back, it
rebuilds the index."""

from __future__ import annotations

import logging
import zlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from src.adapters.postgres.base import BM25_INDEX

log = logging.getLogger(__name__)
REPAIR_LOCK = zlib.crc32(b"keel.bm25-repair") & 0x7FFFFFFF
_PROBE = f"""SELECT count(*) FROM (SELECT 1 FROM chunks
             ORDER BY search_text <@> to_bm25query(:probe, '{BM25_INDEX}') LIMIT 1) AS found"""


class PgKeywordIndex:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def repair_if_silent(self) -> bool:
        """True when the index answered nothing for a text it holds and was rebuilt."""
        async with self._engine.begin() as connection:
            exists = await connection.scalar(text("SELECT count(*) FROM pg_indexes WHERE indexname = :name"),
                                             {"name": BM25_INDEX})
            if not exists:
                return False  # no pg_textsearch here: keyword search uses ts_rank, nothing to repair
            await connection.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": REPAIR_LOCK})
            probe = await connection.scalar(text(
                "SELECT left(search_text, 300) FROM chunks WHERE length(search_text) > 40 LIMIT 1"))
            if probe is None or await connection.scalar(text(_PROBE), {"probe": probe}):
                return False
            log.warning("the BM25 keyword index answered nothing for a text it holds (Postgres restarted?): "
                        "rebuilding it")
            # one process: pg_textsearch refuses to build when no parallel worker can be had
            await connection.execute(text("SELECT set_config('max_parallel_maintenance_workers', '0', true)"))
            await connection.execute(text(f"REINDEX INDEX {BM25_INDEX}"))
            return True
