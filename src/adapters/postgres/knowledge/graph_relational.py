"""GraphStore on plain tables (any Postgres: RDS, Cloud SQL, Supabase, Neon): mentions and relations are
rows, one-hop reads are indexed joins. Entity rows and their keys are shared with the AGE store."""

from __future__ import annotations

import zlib
from datetime import datetime
from uuid import UUID

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from src.adapters.postgres.knowledge.graph_tables import (
    EntityKeyRow,
    EntityRow,
    EntityVectorRow,
    MentionRow,
    RelationRow,
)
from src.adapters.postgres.knowledge.repositories import hnsw_index_name, space_literal
from src.ports.graph import DocumentGraph, Edge, Entity, Mention

GRAPH_LOCK_CLASS = zlib.crc32(b"keel.graph") & 0x7FFFFFFF


def _entity(row) -> Entity:
    return Entity(row.id, row.workspace_id, row.key, row.name, row.type, tuple(row.aliases))


def limit_per(edges: list[tuple[UUID, str, UUID, int]], per_entity: int) -> list[Edge]:
    """Strongest first (most evidence), at most `per_entity` neighbours per entity."""
    kept: dict[UUID, list[Edge]] = {}
    for from_id, predicate, to_id, _ in sorted(edges, key=lambda e: (-e[3], str(e[2]))):
        neighbours = kept.setdefault(from_id, [])
        if len(neighbours) < per_entity:
            neighbours.append(Edge(from_id, predicate, to_id))
    return [edge for neighbours in kept.values() for edge in neighbours]


class EntityRows:
    """Entities and the keys they answer to, as rows (what resolution looks up by key)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock(self, workspace_id: UUID) -> None:
        await self._session.execute(text("SELECT pg_advisory_xact_lock(:space, hashtext(:key))"),
                                    {"space": GRAPH_LOCK_CLASS, "key": str(workspace_id)})

    async def entities_by_key(self, workspace_id: UUID, keys: list[str]) -> dict[str, Entity]:
        if not keys:
            return {}
        rows = await self._session.execute(
            select(EntityKeyRow.key, EntityRow).join(EntityRow, EntityRow.id == EntityKeyRow.entity_id)
            .where(EntityKeyRow.workspace_id == workspace_id, EntityKeyRow.key.in_(keys)))
        return {key: _entity(row) for key, row in rows}

    async def mention_counts(self, workspace_id: UUID, entity_ids: list[UUID]) -> dict[UUID, int]:
        if not entity_ids:
            return {}
        rows = await self._session.execute(select(EntityRow.id, EntityRow.mentions).where(
            EntityRow.workspace_id == workspace_id, EntityRow.id.in_(entity_ids)))
        return {entity: count for entity, count in rows}

    async def add_mentions(self, workspace_id: UUID, deltas: dict[UUID, int]) -> None:
        changed = {entity: delta for entity, delta in deltas.items() if delta}
        if changed:
            await self._session.execute(text(
                "UPDATE kg_entities e SET mentions = e.mentions + d.delta "
                "FROM unnest(CAST(:ids AS uuid[]), CAST(:deltas AS int[])) AS d(id, delta) "
                "WHERE e.workspace_id = :workspace AND e.id = d.id"),
                {"workspace": workspace_id, "ids": list(changed), "deltas": list(changed.values())})

    async def _unmentioned(self, workspace_id: UUID, candidates: list[UUID]) -> list[UUID]:
        if not candidates:
            return []
        return list(await self._session.scalars(select(EntityRow.id).where(
            EntityRow.workspace_id == workspace_id, EntityRow.id.in_(candidates), EntityRow.mentions <= 0)))

    async def entities(self, workspace_id: UUID, entity_ids: list[UUID]) -> dict[UUID, Entity]:
        if not entity_ids:
            return {}
        rows = await self._session.scalars(select(EntityRow).where(EntityRow.workspace_id == workspace_id,
                                                                   EntityRow.id.in_(entity_ids)))
        return {row.id: _entity(row) for row in rows}

    async def search_entities(self, workspace_id: UUID, text_: str, limit: int) -> list[Entity]:
        pattern = "%" + text_.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        aliases = func.array_to_string(EntityRow.aliases, "\n")
        rows = await self._session.scalars(
            select(EntityRow).where(EntityRow.workspace_id == workspace_id,
                                    EntityRow.name.ilike(pattern) | aliases.ilike(pattern))
            .order_by(func.length(EntityRow.name), EntityRow.name).limit(limit))
        return [_entity(row) for row in rows]

    async def save_entities(self, graph: DocumentGraph) -> None:
        if not graph.entities:
            return
        values = [{"id": e.id, "workspace_id": e.workspace_id, "key": e.key, "name": e.name, "type": e.type,
                   "aliases": list(e.aliases)} for e in graph.entities]
        upsert = pg_insert(EntityRow).values(values)
        await self._session.execute(upsert.on_conflict_do_update(index_elements=[EntityRow.id],
                                                                 set_={"aliases": upsert.excluded.aliases}))
        keys = [{"workspace_id": graph.workspace_id, "key": key, "entity_id": entity_id}
                for key, entity_id in graph.keys]
        if keys:  # a key already taken stays with its entity
            await self._session.execute(pg_insert(EntityKeyRow).values(keys).on_conflict_do_nothing())

    async def similar_entities(self, workspace_id: UUID, space: str, dimensions: int, vectors: list[list[float]],
                               min_similarity: float) -> list[Entity | None]:
        if not vectors:
            return []
        await self._session.execute(text("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)"))
        cast = f"vector({int(dimensions)})"
        nearest = text(f"""
            SELECT e.*, 1 - (v.vector::{cast} <=> CAST(CAST(:q AS text) AS {cast})) AS similarity
            FROM kg_entity_vectors v JOIN kg_entities e ON e.id = v.entity_id
            WHERE v.workspace_id = :workspace AND v.space = {space_literal(space)}
            ORDER BY v.vector::{cast} <=> CAST(CAST(:q AS text) AS {cast}) LIMIT 1""")
        found: list[Entity | None] = []
        for vector in vectors:
            row = (await self._session.execute(nearest, {"workspace": workspace_id, "q": str(list(vector))})).first()
            found.append(_entity(row) if row is not None and row.similarity >= min_similarity else None)
        return found

    async def add_name_vectors(self, workspace_id: UUID, space: str, dimensions: int,
                               vectors: list[tuple[UUID, list[float]]]) -> None:
        if not vectors:
            return
        await self._session.execute(text(
            f"CREATE INDEX IF NOT EXISTS {hnsw_index_name('kg ' + space)} ON kg_entity_vectors "
            f"USING hnsw ((vector::vector({int(dimensions)})) vector_cosine_ops) WHERE space = {space_literal(space)}"))
        await self._session.execute(pg_insert(EntityVectorRow).values([
            {"entity_id": entity_id, "space": space, "workspace_id": workspace_id, "vector": vector}
            for entity_id, vector in vectors]).on_conflict_do_nothing())

    async def drop_entities(self, workspace_id: UUID, entity_ids: list[UUID]) -> None:
        if entity_ids:
            await self._session.execute(delete(EntityRow).where(EntityRow.workspace_id == workspace_id,
                                                                EntityRow.id.in_(entity_ids)))


_DOCUMENT_CHUNKS = "SELECT id FROM chunks WHERE document_id = :document"


class TableGraphStore(EntityRows):
    async def write_document(self, graph: DocumentGraph) -> None:
        before = await self._mentioned_by(graph.document_id)
        await self._clear(graph.document_id)
        await self.save_entities(graph)
        if graph.mentions:
            await self._session.execute(pg_insert(MentionRow).values([
                {"chunk_id": chunk_id, "entity_id": entity_id, "workspace_id": graph.workspace_id}
                for chunk_id, entity_id in graph.mentions]).on_conflict_do_nothing())
        if graph.relations:
            await self._session.execute(pg_insert(RelationRow).values([
                {"subject_id": r.subject_id, "predicate": r.predicate, "object_id": r.object_id,
                 "chunk_id": r.chunk_id, "workspace_id": graph.workspace_id} for r in graph.relations])
                .on_conflict_do_nothing())
        await self._recount(graph.workspace_id, [*before, *(e.id for e in graph.entities)])
        await self._drop_unmentioned(graph.workspace_id, before)

    async def remove_document(self, workspace_id: UUID, document_id: UUID) -> None:
        before = await self._mentioned_by(document_id)
        await self._clear(document_id)
        await self._recount(workspace_id, before)
        await self._drop_unmentioned(workspace_id, before)

    async def _mentioned_by(self, document_id: UUID) -> list[UUID]:
        rows = await self._session.scalars(text(f"SELECT DISTINCT entity_id FROM kg_mentions WHERE chunk_id IN "
                                                f"({_DOCUMENT_CHUNKS})"), {"document": document_id})
        return list(rows)

    async def _clear(self, document_id: UUID) -> None:
        for table in ("kg_mentions", "kg_relations"):
            await self._session.execute(text(f"DELETE FROM {table} WHERE chunk_id IN ({_DOCUMENT_CHUNKS})"),
                                        {"document": document_id})

    async def _recount(self, workspace_id: UUID, entity_ids: list[UUID]) -> None:
        if entity_ids:
            await self._session.execute(text(
                "UPDATE kg_entities e SET mentions = (SELECT count(*) FROM kg_mentions m WHERE m.entity_id = e.id) "
                "WHERE e.workspace_id = :workspace AND e.id = ANY(:ids)"),
                {"workspace": workspace_id, "ids": list(set(entity_ids))})

    async def _drop_unmentioned(self, workspace_id: UUID, candidates: list[UUID]) -> None:
        await self.drop_entities(workspace_id, await self._unmentioned(workspace_id, candidates))

    async def related(self, workspace_id: UUID, entity_ids: list[UUID], per_entity: int) -> list[Edge]:
        if not entity_ids:
            return []
        rows = await self._session.execute(text("""
            SELECT from_id, min(predicate), to_id, count(*) FROM (
                SELECT subject_id AS from_id, predicate, object_id AS to_id FROM kg_relations
                WHERE workspace_id = :workspace AND subject_id = ANY(:ids)
                UNION ALL
                SELECT object_id, predicate, subject_id FROM kg_relations
                WHERE workspace_id = :workspace AND object_id = ANY(:ids)) edges
            GROUP BY from_id, to_id"""), {"workspace": workspace_id, "ids": entity_ids})
        return limit_per([tuple(row) for row in rows], per_entity)

    async def mentioned_in(self, workspace_id: UUID, chunk_ids: list[UUID]) -> list[Mention]:
        if not chunk_ids:
            return []
        rows = await self._session.execute(text("""
            SELECT m.entity_id, m.chunk_id, e.mentions FROM kg_mentions m JOIN kg_entities e ON e.id = m.entity_id
            WHERE m.workspace_id = :workspace AND m.chunk_id = ANY(:ids)"""),
            {"workspace": workspace_id, "ids": chunk_ids})
        return [Mention(*row) for row in rows]

    async def mentioning(self, workspace_id: UUID, entity_ids: list[UUID], per_entity: int) -> list[Mention]:
        if not entity_ids:
            return []
        rows = await self._session.execute(text("""
            SELECT e.id, m.chunk_id, e.mentions FROM kg_entities e CROSS JOIN LATERAL (
                SELECT chunk_id FROM kg_mentions WHERE entity_id = e.id ORDER BY chunk_id LIMIT :per) m
            WHERE e.workspace_id = :workspace AND e.id = ANY(:ids)"""),
            {"workspace": workspace_id, "ids": entity_ids, "per": per_entity})
        return [Mention(*row) for row in rows]

    async def entities_in_documents_by(self, workspace_id: UUID, user_id: UUID, since: datetime,
                                       limit: int) -> list[Entity]:
        rows = await self._session.scalars(
            select(EntityRow).where(EntityRow.id.in_(text("""
                SELECT m.entity_id FROM kg_mentions m JOIN chunks c ON c.id = m.chunk_id
                JOIN documents d ON d.id = c.document_id
                WHERE d.workspace_id = :workspace AND d.created_by = :user AND d.created_at >= :since""")))
            .where(EntityRow.workspace_id == workspace_id).order_by(EntityRow.name).limit(limit),
            {"workspace": workspace_id, "user": user_id, "since": since})
        return [_entity(row) for row in rows]
