"""Embeddings for clients (the OpenAI-compatible /v1/embeddings): texts turned into vectors by the model of
the workspace's active embedding space, so they compare with what search compares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from src.core.knowledge.spaces import active_of
from src.ports.identity import AccessPolicy, Permission, Principal
from src.ports.knowledge import Embedders, KnowledgeUnitOfWork
from src.ports.models import TokenCounter
from src.ports.shared import InvalidInput

MAX_INPUTS = 256
MAX_INPUT_CHARS = 32_000


@dataclass(frozen=True, slots=True)
class Embedded:
    model: str
    vectors: list[list[float]]
    tokens: int  # counted, for the client's usage field: embedding runs on this server and costs no budget


class EmbedTexts:
    """- content:read in the workspace; 1 to MAX_INPUTS non-empty texts of at most MAX_INPUT_CHARS each.
    - The active space's model (the configured one before any document made a space); `model`, when given,
      must name it."""

    def __init__(self, uow: Callable[[], KnowledgeUnitOfWork], embedders: Embedders, counter: TokenCounter,
                 access: AccessPolicy) -> None:
        self._uow = uow
        self._embedders = embedders
        self._counter = counter
        self._access = access

    async def model(self) -> str:
        async with self._uow() as uow:
            space = active_of(await uow.spaces.all())
        return space.name if space else self._embedders.configured().model_name

    async def execute(self, caller: Principal | None, workspace_id: UUID, texts: list[str],
                      model: str | None = None) -> Embedded:
        await self._access.require(caller, Permission.CONTENT_READ, workspace_id)
        if not 1 <= len(texts) <= MAX_INPUTS:
            raise InvalidInput(f"input needs 1 to {MAX_INPUTS} texts", field="input")
        if any(not isinstance(text, str) or not text.strip() or len(text) > MAX_INPUT_CHARS for text in texts):
            raise InvalidInput(f"each input is a non-empty text of at most {MAX_INPUT_CHARS} characters",
                               field="input")
        name = await self.model()
        if model is not None and model != name:
            raise InvalidInput(f"this server embeds with {name!r}", field="model")
        embedder = self._embedders.for_space(name)
        vectors = await embedder.embed_documents(texts)
        return Embedded(name, vectors, sum(self._counter.count("", text) for text in texts))
