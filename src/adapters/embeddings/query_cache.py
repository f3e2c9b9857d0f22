"""Repeated queries skip the model: an embedder wrapped with a bounded LRU of query vectors (kept as 32-bit
floats, 1.5 kB a MiniLM vector), and one computation shared by identical queries that arrive together.
Documents are never cached: each is embedded once anyway."""

from __future__ import annotations

import asyncio
from array import array
from collections import OrderedDict

from src.ports.knowledge import Embedder


class CachedQueries:
    def __init__(self, embedder: Embedder, size: int) -> None:
        self._embedder = embedder
        self._size = size
        self._vectors: OrderedDict[str, array] = OrderedDict()
        self._pending: dict[str, asyncio.Future[list[float]]] = {}
        self.model_name = embedder.model_name
        self.dimensions = embedder.dimensions

    def __getattr__(self, name: str):  # load(), close() … of the wrapped embedder
        return getattr(self._embedder, name)

    async def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return await self._embedder.embed_documents(texts)

    async def embed_query(self, text: str) -> list[float]:
        cached = self._vectors.get(text)
        if cached is not None:
            self._vectors.move_to_end(text)
            return cached.tolist()
        if text in self._pending:  # the same query already being embedded: wait for it
            return list(await asyncio.shield(self._pending[text]))
        future: asyncio.Future[list[float]] = asyncio.get_running_loop().create_future()
        self._pending[text] = future
        try:
            vector = await self._embedder.embed_query(text)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here: nobody else may be waiting
            raise
        finally:
            self._pending.pop(text, None)
        future.set_result(vector)
        self._vectors[text] = array("f", vector)
        if len(self._vectors) > self._size:
            self._vectors.popitem(last=False)
        return vector
