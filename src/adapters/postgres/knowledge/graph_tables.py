"""Knowledge-graph tables. Entities and their keys are rows with either graph store (they are what entity
resolution looks up); mentions and relations are rows only for the plain-table store, the AGE store keeps
them as edges of the workspace's graph."""

from __future__ import annotations

import uuid

from pgvector.sqlalchemy import VECTOR
from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from src.adapters.postgres.base import Base


class EntityRow(Base):
    __tablename__ = "kg_entities"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(40))
    aliases: Mapped[list[str]] = mapped_column(ARRAY(String(200)), server_default="{}")
    # chunks mentioning it, kept with every write: expansion reads it to step around hub entities
    mentions: Mapped[int] = mapped_column(server_default="0")

    __table_args__ = (Index("ix_kg_entities_workspace_key", "workspace_id", "key"),)


class EntityKeyRow(Base):
    """Every key an entity answers to (its own and its aliases'): one entity per key in a workspace."""

    __tablename__ = "kg_entity_keys"

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"),
                                                    primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    entity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("kg_entities.id", ondelete="CASCADE"), index=True)


class EntityVectorRow(Base):
    """An entity's name embedded by one model (a space); each space gets a partial HNSW index on a cast to
    its dimensions, made when its first vector is stored."""

    __tablename__ = "kg_entity_vectors"

    entity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("kg_entities.id", ondelete="CASCADE"),
                                                 primary_key=True)
    space: Mapped[str] = mapped_column(String(200), primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    vector = mapped_column(VECTOR())

    __table_args__ = (Index("ix_kg_entity_vectors_workspace_space", "workspace_id", "space"),)


class MentionRow(Base):
    __tablename__ = "kg_mentions"

    chunk_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("chunks.id", ondelete="CASCADE"), primary_key=True)
    entity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("kg_entities.id", ondelete="CASCADE"),
                                                 primary_key=True, index=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))


class RelationRow(Base):
    __tablename__ = "kg_relations"

    subject_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("kg_entities.id", ondelete="CASCADE"),
                                                  primary_key=True)
    predicate: Mapped[str] = mapped_column(String(80), primary_key=True)
    object_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("kg_entities.id", ondelete="CASCADE"),
                                                 primary_key=True, index=True)
    chunk_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("chunks.id", ondelete="CASCADE"), primary_key=True,
                                                index=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
