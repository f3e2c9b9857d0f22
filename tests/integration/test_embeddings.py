"""The local embedder: the real all-MiniLM-L6-v2 weights from the package, offline, on the CPU."""

from __future__ import annotations

import asyncio
import math

import pytest

from src.adapters.embeddings.local_minilm import LocalMiniLmEmbedder
from src.adapters.embeddings.registry import EmbedderRegistry, EmbeddingOptions
from src.ports.knowledge import Embedder, EmbeddingUnavailable


@pytest.fixture(scope="module")
def embedder() -> LocalMiniLmEmbedder:
    return LocalMiniLmEmbedder(batch_size=8)


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def test_vectors_are_unit_length_and_tagged_by_model(embedder):
    assert isinstance(embedder, Embedder)
    vectors = await embedder.embed_documents(["Aspirin lowers the risk of heart attack.", "Cats sleep a lot."])
    assert embedder.model_name == "local/all-MiniLM-L6-v2" and embedder.dimensions == 384
    assert [len(v) for v in vectors] == [384, 384]
    assert all(abs(math.sqrt(_cosine(v, v)) - 1) < 1e-4 for v in vectors)


async def test_meaning_is_what_is_close(embedder):
    query = await embedder.embed_query("Does aspirin prevent heart attacks?")
    related, unrelated = await embedder.embed_documents([
        "Daily low-dose aspirin reduced myocardial infarction in the trial.",
        "The recipe needs two cups of flour and an egg.",
    ])
    assert _cosine(query, related) > 0.5 > _cosine(query, unrelated) + 0.3


async def test_the_same_text_gives_the_same_vector_alone_or_in_a_batch(embedder):
    alone = await embedder.embed_query("Vitamin D and bone density")
    batch = await embedder.embed_documents(["something else entirely", "Vitamin D and bone density"])
    assert _cosine(alone, batch[1]) > 0.9999


async def test_nothing_to_embed_is_nothing(embedder):
    assert await embedder.embed_documents([]) == []


async def test_repeated_queries_are_embedded_once_and_the_cache_stays_bounded(fake_openai):
    """Through the real OpenAI SDK against the local fake, which counts the calls that reach it."""
    registry = EmbedderRegistry(EmbeddingOptions(model="openai/text-embedding-3-small@64", query_cache=2,
                                                 openai_api_key=fake_openai.api_key,
                                                 openai_base_url=fake_openai.base_url))
    embedder = registry.configured()
    first = await embedder.embed_query("glaciers")
    assert await embedder.embed_query("glaciers") == pytest.approx(first, abs=1e-6) and fake_openai.calls == 1
    together = await asyncio.gather(*(embedder.embed_query("dunes") for _ in range(5)))  # one call for all five
    assert fake_openai.calls == 2 and all(vector == together[0] for vector in together)
    await embedder.embed_query("reefs")  # a third query: the least recently used one (glaciers) goes
    await embedder.embed_query("glaciers")
    assert fake_openai.calls == 4
    await embedder.embed_documents(["glaciers", "glaciers"])  # documents are never served from the cache
    assert fake_openai.calls == 5
    fake_openai.fail_next(10, status=500)  # a failed embedding is not cached: the next try calls again
    with pytest.raises(EmbeddingUnavailable):
        await embedder.embed_query("tides")
    fake_openai.heal()
    assert len(await embedder.embed_query("tides")) == 64
