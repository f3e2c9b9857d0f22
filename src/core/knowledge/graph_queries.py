"""Reading the knowledge graph: entity search, neighbours, paths, the chunks behind an entity, and the
expansion that graph search uses. Traversals are breadth-first over the store's one-hop primitives, so the
AGE and plain-table stores answer alike and every hop is bounded. They do not go on through hubs (entities
more than `graph_hub_mentions` chunks mention, e.g. "patients"): a hub links nearly everything to everything,
so stepping through it costs the most and tells the least."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from src.core.knowledge.config import KnowledgeConfig
from src.ports.graph import Entity, GraphStore
from src.ports.identity import AccessPolicy, Permission, Principal
from src.ports.knowledge import ChunkView, KnowledgeUnitOfWork
from src.ports.shared import Clock, InvalidInput, NotFound

MAX_DEPTH = 3
MAX_PATH_DEPTH = 4
MAX_LIMIT = 100
PATH_FAN_OUT = 200
MAX_REACHED = 500  # entities an expansion may visit


@dataclass(frozen=True, slots=True)
class Neighbour:
    entity: Entity
    predicate: str
    depth: int


@dataclass(frozen=True, slots=True)
class PathStep:
    entity: Entity
    predicate: str | None  # of the relation that led here; None on the first step


def _bounded(name: str, value: int, high: int) -> int:
    if not 1 <= value <= high:
        raise InvalidInput(f"{name} must be between 1 and {high}", field=name)
    return value


async def _passable(store: GraphStore, workspace_id: UUID, entity_ids: list[UUID], hub_mentions: int) -> list[UUID]:
    """The entities a traversal may go on through: all but the hubs."""
    counts = await store.mention_counts(workspace_id, entity_ids)
    return [entity for entity in entity_ids if counts.get(entity, 0) <= hub_mentions]


async def expansion_scores(store: GraphStore, workspace_id: UUID, seeds: list[UUID], hops: int,
                           fan_out: int, hub_mentions: int) -> dict[UUID, float]:
    """Chunks the graph links to the seed chunks: through the seeds' entities (depth 0) and entities up to
    `hops` relations away, hubs left out. A chunk scores for each linking entity; nearer and rarer entities
    count more."""
    depth_of = {m.entity_id: 0 for m in await store.mentioned_in(workspace_id, seeds)
                if m.entity_mentions <= hub_mentions}
    frontier = list(depth_of)
    for depth in range(1, hops + 1):
        if not frontier or len(depth_of) >= MAX_REACHED:
            break
        reached = [edge.to_id for edge in await store.related(workspace_id, frontier, fan_out)]
        new = [entity for entity in dict.fromkeys(reached) if entity not in depth_of]
        frontier = (await _passable(store, workspace_id, new, hub_mentions))[:MAX_REACHED]
        depth_of.update((entity, depth) for entity in frontier)
    scores: dict[UUID, float] = {}
    seen = set(seeds)
    for mention in await store.mentioning(workspace_id, list(depth_of), fan_out):
        if mention.chunk_id in seen:
            continue
        weight = 1.0 / (1 + depth_of[mention.entity_id]) / math.log2(2 + mention.entity_mentions)
        scores[mention.chunk_id] = scores.get(mention.chunk_id, 0.0) + weight
    return scores


class SearchEntities:
    """- Entities of the workspace whose name or an alias contains the text."""

    def __init__(self, uow: Callable[[], KnowledgeUnitOfWork], access: AccessPolicy) -> None:
        self._uow = uow
        self._access = access

    async def execute(self, caller: Principal | None, workspace_id: UUID, text: str, limit: int = 20) -> list[Entity]:
        await self._access.require(caller, Permission.CONTENT_READ, workspace_id)
        text = text.strip()
        if not text or len(text) > 200:
            raise InvalidInput("the search text must have 1 to 200 characters", field="search")
        async with self._uow() as uow:
            return await uow.graph.search_entities(workspace_id, text, _bounded("first", limit, MAX_LIMIT))


class ExploreEntity:
    """- One entity of the workspace, its neighbours within a depth (hubs are listed but not gone through),
    and the chunks that mention it."""

    def __init__(self, uow: Callable[[], KnowledgeUnitOfWork], config: KnowledgeConfig, access: AccessPolicy) -> None:
        self._uow = uow
        self._hub_mentions = config.graph_hub_mentions
        self._access = access

    async def get(self, caller: Principal | None, workspace_id: UUID, entity_id: UUID) -> Entity:
        await self._access.require(caller, Permission.CONTENT_READ, workspace_id)
        async with self._uow() as uow:
            found = (await uow.graph.entities(workspace_id, [entity_id])).get(entity_id)
        if found is None:
            raise NotFound("no such entity")
        return found

    async def neighbours(self, caller: Principal | None, workspace_id: UUID, entity_id: UUID, depth: int = 1,
                         limit: int = 50) -> list[Neighbour]:
        await self._access.require(caller, Permission.CONTENT_READ, workspace_id)
        depth, limit = _bounded("depth", depth, MAX_DEPTH), _bounded("first", limit, MAX_LIMIT)
        found: dict[UUID, tuple[str, int]] = {}
        async with self._uow() as uow:
            frontier = [entity_id]
            for level in range(1, depth + 1):
                edges = await uow.graph.related(workspace_id, frontier, limit)
                frontier = []
                for edge in edges:
                    if edge.to_id != entity_id and edge.to_id not in found and len(found) < limit:
                        found[edge.to_id] = (edge.predicate, level)
                        frontier.append(edge.to_id)
                if level < depth:
                    frontier = await _passable(uow.graph, workspace_id, frontier, self._hub_mentions)
            entities = await uow.graph.entities(workspace_id, list(found))
        return [Neighbour(entities[ident], predicate, level) for ident, (predicate, level) in found.items()
                if ident in entities]

    async def chunks(self, caller: Principal | None, workspace_id: UUID, entity_id: UUID,
                     limit: int = 20) -> list[ChunkView]:
        await self._access.require(caller, Permission.CONTENT_READ, workspace_id)
        limit = _bounded("first", limit, MAX_LIMIT)
        async with self._uow() as uow:
            entity = (await uow.graph.entities(workspace_id, [entity_id])).get(entity_id)
            if entity is None:
                return []
            chunk_ids = [m.chunk_id for m in await uow.graph.mentioning(workspace_id, [entity_id], limit)]
            views = await uow.search.views(workspace_id, chunk_ids, entity.name)
        return [views[chunk_id] for chunk_id in chunk_ids if chunk_id in views]


class FindPath:
    """- A shortest chain of relations between two entities of the workspace (breadth-first, bounded), not
    through hubs (either end may be one)."""

    def __init__(self, uow: Callable[[], KnowledgeUnitOfWork], config: KnowledgeConfig, access: AccessPolicy) -> None:
        self._uow = uow
        self._hub_mentions = config.graph_hub_mentions
        self._access = access

    async def execute(self, caller: Principal | None, workspace_id: UUID, from_id: UUID, to_id: UUID,
                      max_depth: int = 3) -> list[PathStep]:
        await self._access.require(caller, Permission.CONTENT_READ, workspace_id)
        max_depth = _bounded("maxDepth", max_depth, MAX_PATH_DEPTH)
        async with self._uow() as uow:
            ends = await uow.graph.entities(workspace_id, [from_id, to_id])
            if from_id not in ends or to_id not in ends:
                raise NotFound("no such entity")
            came_from: dict[UUID, tuple[UUID | None, str | None]] = {from_id: (None, None)}
            frontier = [from_id]
            for _ in range(max_depth):
                if to_id in came_from or not frontier:
                    break
                next_frontier = []
                for edge in await uow.graph.related(workspace_id, frontier, PATH_FAN_OUT):
                    if edge.to_id not in came_from:
                        came_from[edge.to_id] = (edge.from_id, edge.predicate)
                        next_frontier.append(edge.to_id)
                if to_id in came_from:
                    break
                frontier = await _passable(uow.graph, workspace_id, next_frontier, self._hub_mentions)
            if to_id not in came_from:
                return []
            chain: list[tuple[UUID, str | None]] = []
            step: UUID | None = to_id
            while step is not None:
                previous, predicate = came_from[step]
                chain.append((step, predicate))
                step = previous
            chain.reverse()
            entities = await uow.graph.entities(workspace_id, [ident for ident, _ in chain])
        return [PathStep(entities[ident], predicate) for ident, predicate in chain]


class RecentEntities:
    """- Entities mentioned in the documents a member uploaded in the last `days` (a graph-SQL join)."""

    def __init__(self, uow: Callable[[], KnowledgeUnitOfWork], clock: Clock, access: AccessPolicy) -> None:
        self._uow = uow
        self._clock = clock
        self._access = access

    async def execute(self, caller: Principal | None, workspace_id: UUID, user_id: UUID, days: int = 7,
                      limit: int = 50) -> list[Entity]:
        await self._access.require(caller, Permission.CONTENT_READ, workspace_id)
        since = self._clock.now() - timedelta(days=_bounded("days", days, 366))
        async with self._uow() as uow:
            return await uow.graph.entities_in_documents_by(workspace_id, user_id, since,
                                                            _bounded("first", limit, MAX_LIMIT))
