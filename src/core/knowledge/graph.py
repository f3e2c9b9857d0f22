"""The knowledge graph's rules: what makes two mentions one entity, and how a document's extractions become
its part of the graph (built by a job after ingestion)."""

from __future__ import annotations

import logging
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from uuid import UUID

from src.core.knowledge.config import KnowledgeConfig
from src.core.knowledge.extraction import LlmExtraction
from src.ports.graph import (
    ChunkExtraction,
    ChunkText,
    DocumentGraph,
    Entity,
    EntityExtractor,
    Relation,
)
from src.ports.knowledge import DocumentStatus, Embedders, EmbeddingUnavailable, KnowledgeUnitOfWork
from src.ports.shared import Clock

log = logging.getLogger(__name__)
MAX_NAME_CHARS = 200


def entity_key(name: str) -> str:
    """Case, accents' composed forms, punctuation and a plural `s` do not make a different entity."""
    text = unicodedata.normalize("NFKC", name).casefold()
    words = "".join(ch if ch.isalnum() else " " for ch in text).split()
    if words and len(words[-1]) > 3 and words[-1].endswith("s") and not words[-1].endswith(("ss", "us", "is")):
        words[-1] = words[-1][:-1]
    return " ".join(words)[:MAX_NAME_CHARS]


@dataclass
class _Group:
    """Mentions resolved to one entity within a document."""

    keys: set[str]
    names: Counter[str]
    types: Counter[str]


def _groups(extractions: list[ChunkExtraction]) -> tuple[dict[str, _Group], list[tuple[UUID, str]]]:
    """Mentions grouped by key, merging groups an alias connects (union-find over keys)."""
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    mentions: list[tuple[UUID, str]] = []
    for extraction in extractions:
        for mention in extraction.entities:
            key = entity_key(mention.name)
            if not key:
                continue
            find(key)
            for alias in mention.aliases:
                if alias_key := entity_key(alias):
                    parent[find(alias_key)] = find(key)
            mentions.append((extraction.chunk_id, key))
    groups: dict[str, _Group] = {}
    for extraction in extractions:
        for mention in extraction.entities:
            if not (key := entity_key(mention.name)):
                continue
            group = groups.setdefault(find(key), _Group(set(), Counter(), Counter()))
            group.keys.add(key)
            group.keys.update(k for alias in mention.aliases if (k := entity_key(alias)))
            group.names[mention.name.strip()[:MAX_NAME_CHARS]] += 1
            group.names.update({alias.strip()[:MAX_NAME_CHARS]: 0 for alias in mention.aliases})  # known, unused
            group.types[mention.type] += 1
    return groups, [(chunk_id, find(key)) for chunk_id, key in mentions]


def resolve(workspace_id: UUID, extractions: list[ChunkExtraction], existing: dict[str, Entity],
            document_id: UUID, chunk_ids: Iterable[UUID]) -> DocumentGraph:
    """The document's graph: mentions merged by key and alias, matched to the workspace's existing entities
    (which keep their id and gain the new aliases), relations between resolved entities."""
    groups, mentions = _groups(extractions)
    entity_of: dict[str, Entity] = {}
    for root, group in groups.items():
        found = next((existing[key] for key in sorted(group.keys) if key in existing), None)
        name = group.names.most_common(1)[0][0]
        if found is None:
            aliases = tuple(sorted({n for n in group.names if n != name}))
            entity_of[root] = Entity(uuid.uuid4(), workspace_id, entity_key(name), name,
                                     group.types.most_common(1)[0][0], aliases)
        else:  # two groups may meet in one existing entity: it gathers both groups' names
            found = next((e for e in entity_of.values() if e.id == found.id), found)
            new = tuple(sorted(n for n in group.names if n not in {found.name, *found.aliases}))
            entity_of[root] = replace(found, aliases=found.aliases + new)
            for other, entity in entity_of.items():
                if entity.id == found.id:
                    entity_of[other] = entity_of[root]
    root_of = {key: root for root, group in groups.items() for key in group.keys}
    relations = set()
    for extraction in extractions:
        for relation in extraction.relations:
            subject = entity_of.get(root_of.get(entity_key(relation.subject), ""))
            obj = entity_of.get(root_of.get(entity_key(relation.object), ""))
            if subject and obj and subject.id != obj.id:
                relations.add(Relation(subject.id, relation.predicate[:80], obj.id, extraction.chunk_id))
    entities = tuple({entity.id: entity for entity in entity_of.values()}.values())
    keys = tuple(sorted({(key, entity_of[root].id) for root, group in groups.items() for key in group.keys}))
    return DocumentGraph(workspace_id, document_id, tuple(chunk_ids), entities,
                         tuple(sorted({(chunk_id, entity_of[root].id) for chunk_id, root in mentions})),
                         tuple(sorted(relations, key=lambda r: (str(r.chunk_id), str(r.subject_id),
                                                                r.predicate, str(r.object_id)))), keys)


def all_keys(extractions: list[ChunkExtraction]) -> list[str]:
    keys = {entity_key(name) for e in extractions for m in e.entities for name in (m.name, *m.aliases)}
    return sorted(keys - {""})


@dataclass(frozen=True, slots=True)
class _NameVectors:
    space: str
    dimensions: int
    by_name: dict[str, list[float]]


def unmatched_names(extractions: list[ChunkExtraction], existing: dict[str, Entity]) -> dict[str, str]:
    """Root key -> the name resolution would give it, for mention groups no existing key matches."""
    groups, _ = _groups(extractions)
    return {root: group.names.most_common(1)[0][0] for root, group in groups.items()
            if not any(key in existing for key in group.keys)}


class BuildDocumentGraph:
    """- After ingestion: extracts entities and relations from each ready document's chunks and embeds their
    names (no connection held meanwhile), resolves them against the workspace's entities (by key and alias,
    then by name similarity) and replaces the document's part of the graph, under a per-workspace lock so
    concurrent documents merge into the same entities.
    - Extraction by a model is reserved and settled on the workspace's budget (extraction.py).
    - A retried job rewrites the same part; a document deleted or not ready meanwhile is skipped."""

    def __init__(self, uow: Callable[[], KnowledgeUnitOfWork], extractor: EntityExtractor, embedders: Embedders,
                 clock: Clock, config: KnowledgeConfig, llm: LlmExtraction | None = None) -> None:
        """`extractor`: the offline one; `llm`: extraction by a model, when configured."""
        self._uow = uow
        self._extractor = extractor
        self._llm = llm
        self._embedders = embedders
        self._clock = clock
        self._config = config

    async def execute(self, document_ids: list[UUID]) -> int:
        built = 0
        for document_id in document_ids:
            built += await self._build(document_id)
        return built

    async def _build(self, document_id: UUID) -> bool:
        async with self._uow() as uow:
            document = await uow.documents.get(document_id)
            if document is None or document.status is not DocumentStatus.READY:
                return False
            chunks = await uow.chunks.of_document(document_id)
        texts = [ChunkText(chunk.id, chunk.text) for chunk in chunks]
        extractions = await (self._llm.extract(document, texts) if self._llm else self._extractor.extract(texts))
        vectors = await self._name_vectors(extractions)
        async with self._uow() as uow:
            await uow.graph.lock(document.workspace_id)
            current = await uow.documents.get(document_id)
            if current is None or current.status is not DocumentStatus.READY:
                return False
            existing = await uow.graph.entities_by_key(document.workspace_id, all_keys(extractions))
            if vectors is not None:
                existing |= await self._similar(uow, document.workspace_id, extractions, existing, vectors)
            graph = resolve(document.workspace_id, extractions, existing, document_id,
                            [chunk.id for chunk in chunks])
            await uow.graph.write_document(graph)
            if vectors is not None:
                await uow.graph.add_name_vectors(document.workspace_id, vectors.space, vectors.dimensions, [
                    (entity.id, vectors.by_name[entity.name]) for entity in graph.entities
                    if entity.name in vectors.by_name])
            await uow.commit()
        return True

    async def _name_vectors(self, extractions: list[ChunkExtraction]) -> _NameVectors | None:
        names = sorted({mention.name for e in extractions for mention in e.entities})
        if self._config.graph_merge_similarity <= 0 or not names:
            return None
        embedder = self._embedders.configured()
        try:
            vectors = await embedder.embed_documents(names)
        except EmbeddingUnavailable as exc:
            log.warning("entity names not embedded, merging by name only: %s", exc)
            return None
        return _NameVectors(embedder.model_name, embedder.dimensions, dict(zip(names, vectors, strict=True)))

    async def _similar(self, uow: KnowledgeUnitOfWork, workspace_id: UUID, extractions: list[ChunkExtraction],
                       existing: dict[str, Entity], vectors: _NameVectors) -> dict[str, Entity]:
        """Existing entities, by the root key of a group no key matched, whose names are near enough."""
        unmatched = [(root, name) for root, name in unmatched_names(extractions, existing).items()
                     if name in vectors.by_name]
        found = await uow.graph.similar_entities(workspace_id, vectors.space, vectors.dimensions,
                                                 [vectors.by_name[name] for _, name in unmatched],
                                                 self._config.graph_merge_similarity)
        return {root: entity for (root, _), entity in zip(unmatched, found, strict=True) if entity is not None}
