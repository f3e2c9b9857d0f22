"""Declarative base with a naming convention, so Alembic names constraints the same way every time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, MetaData, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def created_at_column() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


BM25_INDEX = "ix_chunks_search_text_bm25"  # made by a migration only where pg_textsearch is available
HNSW_INDEX_PREFIX = "ix_chunk_embeddings_hnsw_"  # one partial index per embedding space, made at run time


def owned_by_keel(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic filter: diff only Keel's tables, never those of AGE, Dramatiq or other tools, nor the indexes
    that exist only on some servers or are made at run time."""
    if not reflected or compare_to is not None:
        return True
    if type_ == "index" and (name == BM25_INDEX or name.startswith(HNSW_INDEX_PREFIX)):
        return False
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
    return table in Base.metadata.tables
