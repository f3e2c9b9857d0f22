"""Knowledge-graph fields, all scoped to one workspace: entity search, an entity with its neighbours and the
chunks that mention it, a path between two entities, and entities of a member's recent uploads."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import strawberry

from src.core.knowledge.graph_queries import Neighbour, PathStep
from src.graphql.context import Info
from src.graphql.errors import InvalidInputError, NotFoundError, UnavailableError, answer
from src.graphql.ids import parse_id
from src.graphql.permissions import require
from src.ports.graph import Entity
from src.ports.identity import Permission
from src.ports.knowledge import ChunkView


@strawberry.type(name="MentioningChunk")
class MentioningChunkType:
    chunk_id: strawberry.ID
    document_id: strawberry.ID
    document_title: str
    text: str
    highlights: list[str]

    @staticmethod
    def of(view: ChunkView) -> MentioningChunkType:
        return MentioningChunkType(chunk_id=strawberry.ID(str(view.chunk_id)),
                                   document_id=strawberry.ID(str(view.document_id)),
                                   document_title=view.document_title, text=view.text,
                                   highlights=list(view.highlights))


@strawberry.type
class MentioningChunks:
    items: list[MentioningChunkType]


@strawberry.type
class Neighbours:
    items: list[Annotated[NeighbourType, strawberry.lazy("src.graphql.graph")]]


NeighboursResult = Annotated[Neighbours | InvalidInputError | UnavailableError, strawberry.union("NeighboursResult")]
ChunksResult = Annotated[
    MentioningChunks | InvalidInputError | UnavailableError,
    strawberry.union("MentioningChunksResult")]


@strawberry.type(name="Entity")
class EntityType:
    id: strawberry.ID
    name: str
    type: str
    aliases: list[str]
    workspace_id: strawberry.Private[UUID]

    @staticmethod
    def of(entity: Entity) -> EntityType:
        return EntityType(id=strawberry.ID(str(entity.id)), name=entity.name, type=entity.type,
                          aliases=list(entity.aliases), workspace_id=entity.workspace_id)

    @strawberry.field(description="Entities up to `depth` relations away (1–3), nearest first.")
    async def neighbours(self, info: Info, depth: int = 1, first: int = 50) -> NeighboursResult:
        caller, explore = await info.context.principal(), info.context.services.explore_entity()
        return await answer(lambda: explore.neighbours(caller, self.workspace_id, UUID(self.id), depth, first),
                            lambda found: Neighbours(items=[NeighbourType.of(n) for n in found]))

    @strawberry.field(description="Chunks that mention the entity.")
    async def chunks(self, info: Info, first: int = 20) -> ChunksResult:
        caller, explore = await info.context.principal(), info.context.services.explore_entity()
        return await answer(lambda: explore.chunks(caller, self.workspace_id, UUID(self.id), first),
                            lambda views: MentioningChunks(items=[MentioningChunkType.of(v) for v in views]))


@strawberry.type(name="Neighbour")
class NeighbourType:
    entity: EntityType
    predicate: str
    depth: int

    @staticmethod
    def of(neighbour: Neighbour) -> NeighbourType:
        return NeighbourType(entity=EntityType.of(neighbour.entity), predicate=neighbour.predicate,
                             depth=neighbour.depth)


@strawberry.type
class EntityList:
    items: list[EntityType]

    @staticmethod
    def of(entities: list[Entity]) -> EntityList:
        return EntityList(items=[EntityType.of(entity) for entity in entities])


@strawberry.type(name="PathStep")
class PathStepType:
    entity: EntityType
    predicate: str | None = strawberry.field(description="The relation that led here; null on the first step.")


@strawberry.type
class EntityPath:
    found: bool
    steps: list[PathStepType]

    @staticmethod
    def of(steps: list[PathStep]) -> EntityPath:
        return EntityPath(found=bool(steps), steps=[PathStepType(entity=EntityType.of(s.entity),
                                                                 predicate=s.predicate) for s in steps])


EntitiesResult = Annotated[EntityList | InvalidInputError | UnavailableError, strawberry.union("EntitiesResult")]
EntityResult = Annotated[
    EntityType | NotFoundError | InvalidInputError | UnavailableError,
    strawberry.union("EntityResult")]
PathResult = Annotated[
    EntityPath | NotFoundError | InvalidInputError | UnavailableError,
    strawberry.union("PathResult")]
WorkspaceId = Annotated[strawberry.ID, strawberry.argument(name="workspaceId")]


@strawberry.type
class GraphQuery:
    @strawberry.field(extensions=require(Permission.CONTENT_READ, "workspace_id"),
                      description="Entities of the knowledge graph whose name or an alias contains `search`.")
    async def entities(self, info: Info, workspace_id: WorkspaceId, search: str, first: int = 20) -> EntitiesResult:
        caller, find = await info.context.principal(), info.context.services.search_entities()
        return await answer(lambda: find.execute(caller, parse_id(workspace_id, "workspaceId"), search, first),
                            EntityList.of)

    @strawberry.field(extensions=require(Permission.CONTENT_READ, "workspace_id"))
    async def entity(self, info: Info, workspace_id: WorkspaceId, id: strawberry.ID) -> EntityResult:
        caller, explore = await info.context.principal(), info.context.services.explore_entity()
        return await answer(lambda: explore.get(caller, parse_id(workspace_id, "workspaceId"), parse_id(id, "id")),
                            EntityType.of)

    @strawberry.field(extensions=require(Permission.CONTENT_READ, "workspace_id"),
                      description="A shortest chain of relations between two entities (at most `maxDepth`, 1–4).")
    async def path(self, info: Info, workspace_id: WorkspaceId,
                   from_: Annotated[strawberry.ID, strawberry.argument(name="from")],
                   to: strawberry.ID, max_depth: int = 3) -> PathResult:
        caller, find = await info.context.principal(), info.context.services.find_path()
        return await answer(lambda: find.execute(caller, parse_id(workspace_id, "workspaceId"), parse_id(from_, "from"),
                                                 parse_id(to, "to"), max_depth), EntityPath.of)

    @strawberry.field(extensions=require(Permission.CONTENT_READ, "workspace_id"),
                      description="Entities mentioned in the documents a member uploaded in the last `days`.")
    async def recent_entities(self, info: Info, workspace_id: WorkspaceId,
                              uploaded_by: Annotated[strawberry.ID, strawberry.argument(name="uploadedBy")],
                              days: int = 7, first: int = 50) -> EntitiesResult:
        caller, recent = await info.context.principal(), info.context.services.recent_entities()
        return await answer(lambda: recent.execute(caller, parse_id(workspace_id, "workspaceId"),
                                                   parse_id(uploaded_by, "uploadedBy"), days, first), EntityList.of)
