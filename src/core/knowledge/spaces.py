"""Embedding spaces: the vectors of one model. Switching models fills a new space in the background while
search keeps reading the active one, then swaps them in one transaction."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from uuid import UUID

from src.ports.knowledge import Embedder, Embedders, EmbeddingSpace, KnowledgeUnitOfWork, SpaceStatus, StoredChunk
from src.ports.shared import Clock, Job, NotFound
from src.ports.telemetry import Attribute, Telemetry

REEMBED_JOB = "knowledge.reembed"


class ReembeddingIncomplete(Exception):
    """Chunks were added while the space was filling; the job runs again (Dramatiq retries it)."""


def active_of(spaces: list[EmbeddingSpace]) -> EmbeddingSpace | None:
    return next((space for space in spaces if space.status is SpaceStatus.ACTIVE), None)


async def live_spaces(uow: KnowledgeUnitOfWork, embedders: Embedders, clock: Clock) -> list[EmbeddingSpace]:
    """The spaces new chunks must be embedded into: the active one and any being filled. On a fresh
    database the configured model becomes the active space."""
    spaces = await uow.spaces.all()
    if active_of(spaces) is None:
        model = embedders.configured()
        spaces = await uow.spaces.all(for_update=True)
        if active_of(spaces) is None:
            first = EmbeddingSpace(model.model_name, model.dimensions, SpaceStatus.ACTIVE, clock.now(), clock.now())
            existing = next((space for space in spaces if space.name == first.name), None)
            await (uow.spaces.save(first) if existing else uow.spaces.add(first))
            await uow.commit()
            spaces = await uow.spaces.all()
    return [space for space in spaces if space.status is not SpaceStatus.RETIRED]


class SyncEmbeddingSpace:
    """- Makes the configured model's space exist. When it differs from the active one, it is registered as
    `building` and a re-embedding job is queued; search keeps using the active space meanwhile.
    - Idempotent: run at every start."""

    def __init__(self, uow: Callable[[], KnowledgeUnitOfWork], embedders: Embedders, clock: Clock) -> None:
        self._uow = uow
        self._embedders = embedders
        self._clock = clock

    async def execute(self) -> EmbeddingSpace:
        model = self._embedders.configured()
        async with self._uow() as uow:
            await live_spaces(uow, self._embedders, self._clock)
            spaces = await uow.spaces.all(for_update=True)
            found = next((space for space in spaces if space.name == model.model_name), None)
            if found is not None and found.status is not SpaceStatus.RETIRED:
                if found.status is SpaceStatus.BUILDING:
                    uow.defer(Job(REEMBED_JOB, {"space": found.name}))  # a lost job must not strand it
                    await uow.commit()
                return found
            building = EmbeddingSpace(model.model_name, model.dimensions, SpaceStatus.BUILDING, self._clock.now())
            await (uow.spaces.save(building) if found else uow.spaces.add(building))
            uow.defer(Job(REEMBED_JOB, {"space": building.name}))
            await uow.commit()
        return building


class Reembed:
    """- Embeds every chunk that has no vector in the building space, batch by batch (a retry resumes).
    - Then, in one transaction and only if no chunk is left without a vector, makes it the active space and
    retires the old one; the old vectors are dropped after the switch."""

    def __init__(self, uow: Callable[[], KnowledgeUnitOfWork], embedders: Embedders, clock: Clock,
                 telemetry: Telemetry, batch_size: int = 64) -> None:
        self._uow = uow
        self._embedders = embedders
        self._clock = clock
        self._telemetry = telemetry
        self._batch_size = batch_size

    async def execute(self, space_name: str) -> EmbeddingSpace:
        async with self._uow() as uow:
            space = next((space for space in await uow.spaces.all() if space.name == space_name), None)
        if space is None:
            raise NotFound(f"no embedding space {space_name!r}")
        if space.status is not SpaceStatus.BUILDING:
            return space
        await fill_space(self._uow, self._embedders.for_space(space.name), space, None, self._batch_size,
                         self._telemetry)
        async with self._uow() as uow:
            spaces = await uow.spaces.all(for_update=True)
            if await uow.chunks.without_vectors(space.name, document_ids=None, limit=1):
                raise ReembeddingIncomplete(f"chunks were added while {space.name} was filling")
            old = active_of(spaces)
            switched = replace(space, status=SpaceStatus.ACTIVE, activated_at=self._clock.now())
            await uow.spaces.save(switched)
            if old is not None and old.name != space.name:
                await uow.spaces.save(replace(old, status=SpaceStatus.RETIRED))
            await uow.commit()
        if old is not None and old.name != space.name:
            async with self._uow() as uow:
                await uow.chunks.drop_vectors(old.name)
                await uow.commit()
        return switched


async def fill_space(uow_factory: Callable[[], KnowledgeUnitOfWork], embedder: Embedder, space: EmbeddingSpace,
                     document_ids: list[UUID] | None, batch_size: int, telemetry: Telemetry) -> None:
    """Embeds chunks lacking a vector in `space`, one batch at a time, with no connection held while the
    model runs. The model never waits for the database: while it embeds a batch, the previous batch is
    written and the next one read. Each written batch is durable, so a killed job resumes where it stopped."""

    async def read(after: StoredChunk | None) -> list[StoredChunk]:
        async with uow_factory() as uow:
            return await uow.chunks.without_vectors(space.name, document_ids=document_ids, limit=batch_size,
                                                    after=(after.document_id, after.position) if after else None)

    async def embed(batch: list[StoredChunk]) -> list[list[float]]:
        started = time.monotonic()
        attributes: dict[str, Attribute] = {"gen_ai.operation.name": "embeddings",
                                            "gen_ai.request.model": space.name, "keel.chunks": len(batch)}
        with telemetry.span(f"embeddings {space.name}", attributes):
            vectors = await embedder.embed_documents([chunk.search_text for chunk in batch])
        telemetry.embedded(space.name, len(batch), time.monotonic() - started)
        return vectors

    async def write(batch: list[StoredChunk], vectors: list[list[float]]) -> None:
        async with uow_factory() as uow:
            await uow.chunks.add_vectors(space, list(zip(batch, vectors, strict=True)))
            await uow.commit()

    batch, writing = await read(None), None
    try:
        while batch:
            embedding = asyncio.ensure_future(embed(batch))
            try:
                following = await read(batch[-1])  # past this batch: it has no vectors yet
                if writing is not None:
                    await writing
            finally:
                vectors = await embedding  # (raises the model's error, if any, once nothing else is pending)
            writing = asyncio.ensure_future(write(batch, vectors))
            batch = following
    finally:
        if writing is not None:
            await writing
