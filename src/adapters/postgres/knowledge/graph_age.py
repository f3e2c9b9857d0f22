"""GraphStore on Apache AGE: one graph per workspace (`kg_<workspace id>`), so a Cypher query of one workspace
has no path to another's vertices. Vertices Document, Chunk, Entity carry the ids of their rows; edges
PART_OF (chunk → document), MENTIONS (chunk → entity), RELATES_TO {predicate, chunk_id, document_id}.

Every value reaches Cypher through AGE's agtype parameter map (`cypher(graph, $$…$$, $1)`), never through
the query text; the graph name is built from the workspace UUID only. Ids are looked up through btree
indexes on the `id` properties; hash and merge joins are switched off around each statement (around a whole
write) so the planner walks those indexes instead of scanning a label (it cannot estimate UNWIND's row count).
Entity mention counts live on the entity rows, moved by each document's write and removal."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from src.adapters.postgres.knowledge.graph_relational import EntityRows, limit_per
from src.ports.graph import DocumentGraph, Edge, Entity, Mention

VERTICES = ("Document", "Chunk", "Entity")
EDGES = ("PART_OF", "MENTIONS", "RELATES_TO")
INDEXED = {"Document": ("id",), "Chunk": ("id", "document_id"), "Entity": ("id",), "RELATES_TO": ("document_id",)}
_JOINS = "SELECT set_config('enable_hashjoin', '{0}', true), set_config('enable_mergejoin', '{0}', true)"
_known_graphs: set[str] = set()  # graphs this process has seen exist (they only go with their workspace)


def _property(name: str) -> str:
    """A vertex or edge property as the btree indexes on it are built."""
    return f"ag_catalog.agtype_access_operator(VARIADIC ARRAY[properties, '\"{name}\"'::ag_catalog.agtype])"


_AGTYPE = "CAST(CAST(:{} AS text) AS ag_catalog.agtype)"
_CLEAR_DOCUMENT = f"""
    WITH chunks AS (SELECT id FROM {{graph}}."Chunk" WHERE {_property("document_id")} = {_AGTYPE.format("document")}),
         relations AS (DELETE FROM {{graph}}."RELATES_TO"
                       WHERE {_property("document_id")} = {_AGTYPE.format("document")}),
         mentions AS (DELETE FROM {{graph}}."MENTIONS" WHERE start_id IN (SELECT id FROM chunks)),
         parts AS (DELETE FROM {{graph}}."PART_OF" WHERE start_id IN (SELECT id FROM chunks)),
         chunk_vertices AS (DELETE FROM {{graph}}."Chunk" WHERE id IN (SELECT id FROM chunks))
    DELETE FROM {{graph}}."Document" WHERE {_property("id")} = {_AGTYPE.format("document")}"""
_DROP_ENTITIES = f"""
    WITH doomed AS (SELECT id FROM {{graph}}."Entity" WHERE {_property("id")} IN (
                        SELECT CAST(i AS ag_catalog.agtype) FROM unnest(CAST(:ids AS text[])) AS i)),
         relations AS (DELETE FROM {{graph}}."RELATES_TO"
                       WHERE start_id IN (SELECT id FROM doomed) OR end_id IN (SELECT id FROM doomed)),
         mentions AS (DELETE FROM {{graph}}."MENTIONS" WHERE end_id IN (SELECT id FROM doomed))
    DELETE FROM {{graph}}."Entity" WHERE id IN (SELECT id FROM doomed)"""


def graph_name(workspace_id: UUID) -> str:
    return f"kg_{UUID(str(workspace_id)).hex}"


def _ids(values) -> list[str]:
    return [str(value) for value in values]


class AgeGraphStore(EntityRows):
    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        self._walking_indexes = False

    @asynccontextmanager
    async def _index_walks(self) -> AsyncIterator[None]:
        """Hash and merge joins off until the block ends (transaction-local: a failed transaction resets them)."""
        if self._walking_indexes:
            yield
            return
        connection = await self._session.connection()
        await connection.exec_driver_sql(_JOINS.format("off"))
        self._walking_indexes = True
        try:
            yield
        finally:
            self._walking_indexes = False
        await connection.exec_driver_sql(_JOINS.format("on"))

    async def _cypher(self, workspace_id: UUID, query: str, params: dict, columns: tuple[str, ...]) -> list[tuple]:
        graph = graph_name(workspace_id)
        if not await self._exists(graph):
            return []
        async with self._index_walks():
            result = await (await self._session.connection()).exec_driver_sql(
                f"SELECT * FROM ag_catalog.cypher('{graph}', $$ {query} $$, $1) "
                f"AS ({', '.join(f'{column} agtype' for column in columns)})", (json.dumps(params),))
        return [tuple(None if value is None else json.loads(value) for value in row) for row in result]

    async def _exists(self, graph: str) -> bool:
        if graph in _known_graphs:
            return True
        found = await self._session.scalar(text("SELECT count(*) FROM ag_catalog.ag_graph WHERE name = :name"),
                                           {"name": graph})
        if found:
            _known_graphs.add(graph)
        return bool(found)

    async def _ensure(self, workspace_id: UUID) -> None:
        """Creates the workspace's graph with its labels and indexes (callers hold the workspace's lock)."""
        graph = graph_name(workspace_id)
        if await self._exists(graph):
            return
        await self._session.execute(text("SELECT ag_catalog.create_graph(:name)"), {"name": graph})
        for label in VERTICES:
            await self._session.execute(text("SELECT ag_catalog.create_vlabel(:g, :l)"), {"g": graph, "l": label})
        for label in EDGES:  # AGE indexes start_id and end_id itself
            await self._session.execute(text("SELECT ag_catalog.create_elabel(:g, :l)"), {"g": graph, "l": label})
        for label, properties in INDEXED.items():
            for prop in properties:
                await self._session.execute(text(
                    f'CREATE INDEX ON {graph}."{label}" '
                    f"(ag_catalog.agtype_access_operator(VARIADIC ARRAY[properties, '\"{prop}\"'::agtype]))"))
        _known_graphs.add(graph)

    async def write_document(self, graph: DocumentGraph) -> None:
        await self._ensure(graph.workspace_id)
        async with self._index_walks():
            await self._write(graph)

    async def _write(self, graph: DocumentGraph) -> None:
        workspace, document = graph.workspace_id, str(graph.document_id)
        before = await self._mentioned_by(workspace, document)
        await self._clear(workspace, document)
        await self.save_entities(graph)
        await self._cypher(workspace, "CREATE (d:Document {id: $document}) WITH d UNWIND $chunks AS c "
                                      "CREATE (:Chunk {id: c, document_id: $document})-[:PART_OF]->(d)",
                           {"document": document, "chunks": _ids(graph.chunk_ids)}, ("n",))
        wanted = _ids(e.id for e in graph.entities)
        present = {row[0] for row in await self._cypher(
            workspace, "UNWIND $ids AS i MATCH (e:Entity) WHERE e.id = i RETURN e.id", {"ids": wanted}, ("id",))}
        new = [{"id": str(e.id), "name": e.name, "type": e.type} for e in graph.entities if str(e.id) not in present]
        await self._cypher(workspace, "UNWIND $entities AS e CREATE (:Entity {id: e.id, name: e.name, type: e.type})",
                           {"entities": new}, ("n",))
        await self._cypher(workspace, "UNWIND $pairs AS p MATCH (c:Chunk) WHERE c.id = p[0] "
                                      "MATCH (e:Entity) WHERE e.id = p[1] CREATE (c)-[:MENTIONS]->(e)",
                           {"pairs": [[str(c), str(e)] for c, e in graph.mentions]}, ("n",))
        await self._cypher(workspace, "UNWIND $relations AS r MATCH (a:Entity) WHERE a.id = r.s "
                                      "MATCH (b:Entity) WHERE b.id = r.o CREATE (a)-[:RELATES_TO "
                                      "{predicate: r.p, chunk_id: r.c, document_id: $document}]->(b)",
                           {"document": document, "relations": [
                               {"s": str(r.subject_id), "o": str(r.object_id), "p": r.predicate, "c": str(r.chunk_id)}
                               for r in graph.relations]}, ("n",))
        await self._count_and_drop(workspace, before, Counter(entity for _, entity in graph.mentions))

    async def remove_document(self, workspace_id: UUID, document_id: UUID) -> None:
        async with self._index_walks():
            before = await self._mentioned_by(workspace_id, str(document_id))
            await self._clear(workspace_id, str(document_id))
            await self._count_and_drop(workspace_id, before, Counter())

    async def _mentioned_by(self, workspace_id: UUID, document: str) -> Counter[UUID]:
        """How many of the document's chunks mention each entity."""
        rows = await self._cypher(workspace_id, "MATCH (c:Chunk)-[:MENTIONS]->(e:Entity) "
                                                "WHERE c.document_id = $document RETURN e.id, count(*)",
                                  {"document": document}, ("id", "n"))
        return Counter({UUID(entity): count for entity, count in rows})

    async def _count_and_drop(self, workspace_id: UUID, before: Counter[UUID], after: Counter[UUID]) -> None:
        """Moves the entities' mention counts by what the document's part changed; drops those left unmentioned."""
        await self.add_mentions(workspace_id, {entity: after[entity] - before[entity] for entity in before | after})
        gone = await self._unmentioned(workspace_id, list(before))
        if gone:
            await self._label_sql(workspace_id, _DROP_ENTITIES, {"ids": [json.dumps(str(entity)) for entity in gone]})
        await self.drop_entities(workspace_id, gone)

    async def _clear(self, workspace_id: UUID, document: str) -> None:
        await self._label_sql(workspace_id, _CLEAR_DOCUMENT, {"document": json.dumps(document)})

    async def _label_sql(self, workspace_id: UUID, statement: str, params: dict) -> None:
        """Deletes through the label tables in one statement. Cypher's DELETE would do the same, but AGE
        then scans every edge table for edges left dangling, once per statement, however few it deleted."""
        graph = graph_name(workspace_id)
        if await self._exists(graph):
            await self._session.execute(text(statement.format(graph=graph)), params)

    async def related(self, workspace_id: UUID, entity_ids: list[UUID], per_entity: int) -> list[Edge]:
        rows = []
        for pattern in ("(a:Entity)-[r:RELATES_TO]->(b:Entity)", "(a:Entity)<-[r:RELATES_TO]-(b:Entity)"):
            # one direction at a time: an undirected pattern makes AGE's plan cross every entity with the seeds
            rows += await self._cypher(workspace_id, f"UNWIND $ids AS i MATCH {pattern} WHERE a.id = i "
                                                     "RETURN a.id, r.predicate, b.id",
                                       {"ids": _ids(entity_ids)}, ("a", "p", "b"))
        evidence: dict[tuple[str, str], list[str]] = {}
        for from_id, predicate, to_id in rows:
            evidence.setdefault((from_id, to_id), []).append(predicate)
        return limit_per([(UUID(a), min(predicates), UUID(b), len(predicates))
                          for (a, b), predicates in evidence.items()], per_entity)

    async def mentioned_in(self, workspace_id: UUID, chunk_ids: list[UUID]) -> list[Mention]:
        pairs = await self._cypher(workspace_id, "UNWIND $ids AS i MATCH (c:Chunk)-[:MENTIONS]->(e:Entity) "
                                                 "WHERE c.id = i RETURN e.id, c.id", {"ids": _ids(chunk_ids)},
                                   ("e", "c"))
        totals = await self.mention_counts(workspace_id, list({UUID(entity) for entity, _ in pairs}))
        return [Mention(UUID(entity), UUID(chunk), totals.get(UUID(entity), 0)) for entity, chunk in pairs]

    async def mentioning(self, workspace_id: UUID, entity_ids: list[UUID], per_entity: int) -> list[Mention]:
        rows = await self._cypher(workspace_id, "UNWIND $ids AS i MATCH (c:Chunk)-[:MENTIONS]->(e:Entity) "
                                                "WHERE e.id = i WITH e.id AS entity, collect(c.id) AS chunks "
                                                "RETURN entity, chunks[0..$per]",
                                  {"ids": _ids(entity_ids), "per": per_entity}, ("e", "c"))
        totals = await self.mention_counts(workspace_id, entity_ids)
        return [Mention(UUID(entity), UUID(chunk), totals.get(UUID(entity), 0)) for entity, chunks in rows
                for chunk in chunks]

    async def entities_in_documents_by(self, workspace_id: UUID, user_id: UUID, since: datetime,
                                       limit: int) -> list[Entity]:
        """One statement: the Cypher pattern's (document, entity) pairs joined with the documents table
        (`\\:` keeps SQLAlchemy from reading `:LABEL` as a bind parameter)."""
        graph = graph_name(workspace_id)
        if not await self._exists(graph):
            return []
        ids = await self._session.scalars(text(f"""
            SELECT DISTINCT btrim(g.entity_id::text, '"')::uuid
            FROM ag_catalog.cypher('{graph}', $$
                MATCH (d:Document)<-[\\:PART_OF]-(\\:Chunk)-[\\:MENTIONS]->(e:Entity) RETURN d.id, e.id
            $$) AS g(document_id agtype, entity_id agtype)
            JOIN documents d ON d.id = btrim(g.document_id::text, '"')::uuid
            WHERE d.workspace_id = :workspace AND d.created_by = :user AND d.created_at >= :since"""),
            {"workspace": workspace_id, "user": user_id, "since": since})
        found = await self.entities(workspace_id, list(ids))
        return sorted(found.values(), key=lambda entity: entity.name)[:limit]
