"""The ONNX Runtime backend of the local model: the graph exported once from the packaged weights, vectors
equal to torch's (fp32) or close to them (int8), chosen by configuration."""

from __future__ import annotations

import json
from itertools import islice

import numpy as np
import pytest

from src.adapters.embeddings.local_minilm import LocalMiniLmEmbedder
from src.adapters.embeddings.onnx_minilm import OnnxMiniLmEmbedder
from src.adapters.embeddings.registry import EmbedderRegistry
from src.config import REPO_ROOT, Settings
from src.wiring.knowledge import embedding_options

pytestmark = pytest.mark.slow
SCIFACT = REPO_ROOT.parent / "shared" / "datasets" / "scifact" / "corpus.jsonl"


@pytest.fixture(scope="module")
def texts() -> list[str]:
    with SCIFACT.open() as lines:
        abstracts = [f"{doc['title']} {doc['text']}" for doc in map(json.loads, islice(lines, 48))]
    return [*abstracts, "short", "word " * 600]  # one cut at the model's sequence length


@pytest.fixture(scope="module")
def torch_vectors(texts) -> np.ndarray:
    return np.array(LocalMiniLmEmbedder(batch_size=8)._encode(texts))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx")


def test_fp32_graph_gives_torchs_vectors_and_is_exported_once(cache, texts, torch_vectors):
    embedder = OnnxMiniLmEmbedder(cache, batch_size=8)
    vectors = np.array(embedder._encode(texts))
    assert vectors.shape == (len(texts), 384)
    assert (vectors * torch_vectors).sum(1).min() > 0.9999
    exported = embedder.graph.stat().st_mtime_ns
    again = OnnxMiniLmEmbedder(cache, batch_size=8)  # another process's embedder finds the graph made
    assert np.allclose(again._encode(texts[:3]), vectors[:3], atol=1e-5)
    assert again.graph.stat().st_mtime_ns == exported and len(list(cache.glob("*.onnx"))) == 1


def test_int8_graph_stays_close_to_torch(cache, texts, torch_vectors):
    embedder = OnnxMiniLmEmbedder(cache, int8=True, batch_size=8)
    cosines = (np.array(embedder._encode(texts)) * torch_vectors).sum(1)
    assert cosines.mean() > 0.98 and cosines.min() > 0.95
    assert embedder.graph.stat().st_size < 0.4 * OnnxMiniLmEmbedder(cache).graph.stat().st_size


async def test_configuration_chooses_the_backend(cache, texts, torch_vectors):
    settings = Settings(embedding_backend="onnx", home=cache.parent)  # type: ignore[call-arg]
    options = embedding_options(settings)
    assert options.cache == cache.parent / "cache" / "onnx"
    registry = EmbedderRegistry(options)
    assert registry.warm() == "local/all-MiniLM-L6-v2"
    embedder = registry.configured()
    query = await embedder.embed_query(texts[0])
    assert float(np.dot(query, torch_vectors[0])) > 0.9999
    torch_registry = EmbedderRegistry(embedding_options(Settings()))  # type: ignore[call-arg]
    assert isinstance(torch_registry._make("local/all-MiniLM-L6-v2"), LocalMiniLmEmbedder)
    assert isinstance(registry._make("local/all-MiniLM-L6-v2"), OnnxMiniLmEmbedder)
