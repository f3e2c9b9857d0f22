"""The local embedder: the real all-MiniLM-L6-v2 weights from the package, offline, on the CPU."""

from __future__ import annotations

import math

import pytest

from src.adapters.embeddings.local_minilm import LocalMiniLmEmbedder
from src.ports.knowledge import Embedder


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
