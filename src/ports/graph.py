"""Knowledge-graph ports: what an extractor finds in chunks, and the graph store (Apache AGE or plain tables)
that keeps entities and relations beside the chunks, one workspace at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable
from uuid import UUID

CO_OCCURS = "co_occurs_with"  # the predicate of a relation nothing more specific was found for


@dataclass(frozen=True, slots=True)
class ChunkText:
    chunk_id: UUID
    text: str


@dataclass(frozen=True, slots=True)
class EntityMention:
    name: str
    type: str  # e.g. "term", "acronym", "name", or whatever an LLM extractor was asked for
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RelationMention:
    subject: str  # entity names as mentioned
    predicate: str
    object: str


@dataclass(frozen=True, slots=True)
class ChunkExtraction:
    chunk_id: UUID
    entities: tuple[EntityMention, ...]
    relations: tuple[RelationMention, ...] = ()


@runtime_checkable
class EntityExtractor(Protocol):
    name: str

    async def extract(self, chunks: list[ChunkText]) -> list[ChunkExtraction]:
        """One extraction per chunk, in order."""
        ...


@dataclass(frozen=True, slots=True)
class Entity:
    id: UUID
    workspace_id: UUID
    key: str  # the normalised name: entities with the same key (or an alias with it) are one entity
    name: str
    type: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Relation:
    subject_id: UUID
    predicate: str
    object_id: UUID
    chunk_id: UUID  # the evidence


@dataclass(frozen=True, slots=True)
class DocumentGraph:
    """A document's whole part of the graph; writing it replaces what the document had before."""

    workspace_id: UUID
    document_id: UUID
    chunk_ids: tuple[UUID, ...]
    entities: tuple[Entity, ...]  # new and existing ones it mentions (existing ones keep their id)
    mentions: tuple[tuple[UUID, UUID], ...]  # (chunk id, entity id)
    relations: tuple[Relation, ...]
    keys: tuple[tuple[str, UUID], ...] = ()  # every key (names and aliases normalised) -> its entity


@dataclass(frozen=True, slots=True)
class Edge:
    """A relation seen from `from_id` (either end of it)."""

    from_id: UUID
    predicate: str
    to_id: UUID


@dataclass(frozen=True, slots=True)
class Mention:
    entity_id: UUID
    chunk_id: UUID
    entity_mentions: int  # how many chunks mention the entity in all (common entities link weakly)


@runtime_checkable
class GraphStore(Protocol):
    """Storage primitives, every one scoped to one workspace: nothing reaches another workspace's vertices.
    Traversals (neighbours, paths, expansion) are built from them in the core."""

    async def lock(self, workspace_id: UUID) -> None:
        """Serialises the workspace's graph writers until the transaction ends."""
        ...

    async def entities_by_key(self, workspace_id: UUID, keys: list[str]) -> dict[str, Entity]:
        """Existing entities whose key or one of whose aliases is among `keys`, by that key."""
        ...

    async def write_document(self, graph: DocumentGraph) -> None: ...

    async def similar_entities(self, workspace_id: UUID, space: str, dimensions: int, vectors: list[list[float]],
                               min_similarity: float) -> list[Entity | None]:
        """For each name vector, the workspace's entity whose name vector is nearest, if at least that similar
        (cosine)."""
        ...

    async def add_name_vectors(self, workspace_id: UUID, space: str, dimensions: int,
                               vectors: list[tuple[UUID, list[float]]]) -> None:
        """Entities' name vectors (an entity keeps its first one per space)."""
        ...

    async def remove_document(self, workspace_id: UUID, document_id: UUID) -> None:
        """Its vertices and edges go; entities no chunk mentions any more go too."""
        ...

    async def search_entities(self, workspace_id: UUID, text: str, limit: int) -> list[Entity]:
        """Entities whose name or an alias contains `text`, shortest names first."""
        ...

    async def entities(self, workspace_id: UUID, entity_ids: list[UUID]) -> dict[UUID, Entity]: ...

    async def mention_counts(self, workspace_id: UUID, entity_ids: list[UUID]) -> dict[UUID, int]:
        """How many chunks mention each entity (kept up to date by every write and removal)."""
        ...

    async def related(self, workspace_id: UUID, entity_ids: list[UUID], per_entity: int) -> list[Edge]:
        """Relations touching these entities, at most `per_entity` distinct neighbours each."""
        ...

    async def mentioned_in(self, workspace_id: UUID, chunk_ids: list[UUID]) -> list[Mention]:
        """The entities these chunks mention."""
        ...

    async def mentioning(self, workspace_id: UUID, entity_ids: list[UUID], per_entity: int) -> list[Mention]:
        """Up to `per_entity` chunks mentioning each entity."""
        ...

    async def entities_in_documents_by(self, workspace_id: UUID, user_id: UUID, since: datetime,
                                       limit: int) -> list[Entity]:
        """Entities mentioned in documents `user_id` uploaded since `since` (graph joined with tables)."""
        ...
