"""all-MiniLM-L6-v2 run by ONNX Runtime instead of torch (KEEL_EMBEDDING_BACKEND=onnx or onnx-int8).

The same model and space as the torch backend: the fp32 graph gives the same vectors (cosine 1.0000 to
torch's), the int8 one close ones (~0.995; its retrieval cost on SciFact is in the README). The graph is
exported once from the packaged weights into KEEL_HOME/cache/onnx by a child process (torch never loads
here) and reused by every process after; the tokenizer is the package's own `tokenizer.json`."""

from __future__ import annotations

import fcntl
import subprocess
import sys
import threading
from pathlib import Path

from src.adapters.embeddings.local_minilm import MODEL_NAME, EncodesOnAThread, model_folder, token_batches
from src.ports.knowledge import EmbeddingUnavailable

EXPORT_TIMEOUT_SECONDS = 600


class OnnxMiniLmEmbedder(EncodesOnAThread):
    model_name = MODEL_NAME
    dimensions = 384

    def __init__(self, cache: Path, int8: bool = False, batch_size: int = 32, threads: int = 2,
                 max_seq_length: int = 256) -> None:
        self._cache = cache
        self._int8 = int8
        self._batch_size = batch_size
        self._threads = threads
        self._max_seq_length = max_seq_length
        self._session = None
        self._tokenizer = None
        self._lock = threading.Lock()  # one run at a time: ONNX Runtime already uses every thread it is given

    @property
    def graph(self) -> Path:
        try:
            import onnxruntime
        except ImportError:
            raise EmbeddingUnavailable("the ONNX backend needs onnxruntime installed") from None
        kind = "int8" if self._int8 else "fp32"
        return self._cache / f"all-MiniLM-L6-v2-{kind}-ort{onnxruntime.__version__}.onnx"

    def load(self):
        if self._session is None:
            import onnxruntime
            from tokenizers import Tokenizer

            graph = self.graph
            self._export_once(graph)
            tokenizer = Tokenizer.from_file(str(model_folder() / "tokenizer.json"))
            tokenizer.no_padding()  # batches are padded here, to their own longest text
            tokenizer.enable_truncation(self._max_seq_length)
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self._threads
            options.inter_op_num_threads = 1
            self._tokenizer = tokenizer
            self._session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        return self._session

    def _export_once(self, graph: Path) -> None:
        """Exports the graph unless a previous run did; a lock file makes concurrent processes wait for one
        export instead of each making its own."""
        if graph.exists():
            return
        graph.parent.mkdir(parents=True, exist_ok=True)
        with open(graph.parent / ".export.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if graph.exists():
                return
            command = [sys.executable, "-m", "src.adapters.embeddings.onnx_export", str(graph)]
            done = subprocess.run([*command, *(["--int8"] if self._int8 else [])], capture_output=True, text=True,
                                  timeout=EXPORT_TIMEOUT_SECONDS, cwd=Path(__file__).resolve().parents[3])
            if done.returncode != 0 or not graph.exists():
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                raise EmbeddingUnavailable(f"could not export the embedding model to ONNX: {last}")

    def _encode(self, texts: list[str]) -> list[list[float]]:
        import numpy as np

        with self._lock:
            session = self.load()
            encodings = self._tokenizer.encode_batch(texts)  # type: ignore[union-attr]
            vectors = np.zeros((len(texts), self.dimensions), dtype=np.float32)
            budget = self._batch_size * self._max_seq_length
            for batch in token_batches([len(encoding.ids) for encoding in encodings], budget):
                width = max(len(encodings[index].ids) for index in batch)
                inputs = {name: np.zeros((len(batch), width), dtype=np.int64)
                          for name in ("input_ids", "attention_mask", "token_type_ids")}
                for row, index in enumerate(batch):
                    encoding = encodings[index]
                    size = len(encoding.ids)
                    inputs["input_ids"][row, :size] = encoding.ids
                    inputs["attention_mask"][row, :size] = encoding.attention_mask
                    inputs["token_type_ids"][row, :size] = encoding.type_ids
                hidden = session.run(None, inputs)[0]
                mask = inputs["attention_mask"][..., None].astype(np.float32)
                pooled = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)  # MiniLM's mean pooling
                vectors[batch] = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return vectors.tolist()
