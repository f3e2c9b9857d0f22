"""Knowledge ports: embeddings (more to come: documents, chunks, search)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from src.ports.shared import DomainError


class EmbeddingUnavailable(DomainError):
    code = "embedding_unavailable"


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length vectors. Every stored vector is tagged with `model_name`, so a model
    change means re-embedding, never mixing vectors of two models in one index."""

    model_name: str
    dimensions: int

    async def embed_documents(self, texts: list[str]) -> list[list[float]]: ...

    async def embed_query(self, text: str) -> list[float]: ...
