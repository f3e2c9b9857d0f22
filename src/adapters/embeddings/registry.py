"""Embedders by space name: `local/all-MiniLM-L6-v2`, `openai/<model>` or `openai/<model>@<dimensions>`
(a text-embedding-3 model shortened to that size). One instance per name per process."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from src.adapters.embeddings.local_minilm import MODEL_NAME as LOCAL_MINILM
from src.adapters.embeddings.local_minilm import LocalMiniLmEmbedder
from src.adapters.embeddings.onnx_minilm import OnnxMiniLmEmbedder
from src.adapters.embeddings.openai_embeddings import OpenAIEmbedder
from src.adapters.embeddings.query_cache import CachedQueries
from src.ports.knowledge import Embedder, EmbeddingUnavailable

OPENAI_SIZES = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}
_OPENAI = re.compile(r"^openai/(?P<model>[A-Za-z0-9._:-]+?)(@(?P<dimensions>\d{1,5}))?$")


@dataclass(frozen=True, slots=True)
class EmbeddingOptions:
    model: str = LOCAL_MINILM
    batch_size: int = 32
    threads: int = 2
    max_seq_length: int = 256
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    openai_dimensions: int | None = None  # size of an OpenAI-compatible model not in OPENAI_SIZES
    query_cache: int = 2048  # query vectors kept per space; 0 = none
    backend: str = "torch"  # what runs the local model: torch, onnx or onnx-int8
    cache: Path = Path(".keel/cache/onnx")  # where the ONNX backend keeps its exported graphs


def check_model_name(name: str) -> str:
    """Raises ValueError for a name no embedder here can serve."""
    if name != LOCAL_MINILM and not _OPENAI.match(name):
        raise ValueError(f"unknown embedding model {name!r}: use {LOCAL_MINILM} or openai/<model>[@<dimensions>]")
    return name


class EmbedderRegistry:
    def __init__(self, options: EmbeddingOptions) -> None:
        self._options = options
        self._made: dict[str, Embedder] = {}

    def configured(self) -> Embedder:
        return self.for_space(self._options.model)

    def warm(self) -> str | None:
        """Loads the configured local model now (blocking, ~1-6 s), so no search or ingestion waits for it
        later; a remote model needs nothing. Returns what was loaded, for the log."""
        if self._options.model == LOCAL_MINILM:
            self.configured().load()  # type: ignore[attr-defined]
            return self._options.model
        return None

    def for_space(self, name: str) -> Embedder:
        if name not in self._made:
            made = self._make(name)
            self._made[name] = CachedQueries(made, self._options.query_cache) if self._options.query_cache else made
        return self._made[name]

    def _make(self, name: str) -> Embedder:
        options = self._options
        if name == LOCAL_MINILM and options.backend.startswith("onnx"):
            return OnnxMiniLmEmbedder(options.cache, options.backend == "onnx-int8", options.batch_size,
                                      options.threads, options.max_seq_length)
        if name == LOCAL_MINILM:
            return LocalMiniLmEmbedder(options.batch_size, options.threads, options.max_seq_length)
        found = _OPENAI.match(name)
        if found is None:
            raise EmbeddingUnavailable(f"no embedder for space {name!r}")
        if not options.openai_api_key:
            raise EmbeddingUnavailable(f"{name} needs KEEL_OPENAI_API_KEY")
        model, shortened = found["model"], found["dimensions"]
        dimensions = int(shortened) if shortened else OPENAI_SIZES.get(model, options.openai_dimensions)
        if dimensions is None:
            raise EmbeddingUnavailable(f"set KEEL_EMBEDDING_DIMENSIONS: the size of {model} is not known")
        return OpenAIEmbedder(model, dimensions, api_key=options.openai_api_key, base_url=options.openai_base_url,
                              shorten=bool(shortened))
