"""OpenAI embeddings (or any server speaking the same API) through the official SDK."""

from __future__ import annotations

import math

import openai

from src.ports.knowledge import EmbeddingUnavailable

MAX_INPUTS_PER_CALL = 2048  # the API's own limit per request


def _unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(value * value for value in vector)) or 1.0
    return [value / norm for value in vector]


class OpenAIEmbedder:
    """`dimensions` is the model's own size, or a smaller one the model can shorten to (text-embedding-3-*).
    The SDK retries 429s and 5xx itself (honouring Retry-After); what still fails becomes
    EmbeddingUnavailable, so the job is retried later instead of failing the document."""

    def __init__(self, model: str, dimensions: int, *, api_key: str, base_url: str | None = None,
                 batch_size: int = 256, shorten: bool = False, timeout: float = 60.0, max_retries: int = 3) -> None:
        self.model_name = f"openai/{model}" + (f"@{dimensions}" if shorten else "")
        self.dimensions = dimensions
        self._model = model
        self._shorten = shorten
        self._batch_size = min(batch_size, MAX_INPUTS_PER_CALL)
        self._client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout,
                                          max_retries=max_retries)

    async def _call(self, texts: list[str]) -> list[list[float]]:
        extra = {"dimensions": self.dimensions} if self._shorten else {}
        try:
            response = await self._client.embeddings.create(model=self._model, input=texts,
                                                            encoding_format="float", **extra)
        except openai.APIError as exc:
            raise EmbeddingUnavailable(f"OpenAI embeddings failed: {exc}") from exc
        vectors = [item.embedding for item in sorted(response.data, key=lambda item: item.index)]
        if len(vectors) != len(texts) or any(len(vector) != self.dimensions for vector in vectors):
            raise EmbeddingUnavailable(f"{self._model} answered vectors of an unexpected count or size")
        return [_unit(vector) for vector in vectors]

    async def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            vectors.extend(await self._call(texts[start:start + self._batch_size]))
        return vectors

    async def embed_query(self, text: str) -> list[float]:
        return (await self._call([text]))[0]
