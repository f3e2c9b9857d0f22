"""Embedding throughput of the default local model on real abstracts (printed, never asserted).

Run: ./keel test benchmarks -k embedding -s
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from itertools import islice

import pytest

from src.adapters.embeddings.local_minilm import LocalMiniLmEmbedder
from src.config import REPO_ROOT

CORPUS = REPO_ROOT.parent / "shared" / "datasets" / "scifact" / "corpus.jsonl"


def test_local_minilm_throughput_on_scifact_abstracts():
    with CORPUS.open() as lines:
        texts = [f"{doc['title']} {doc['text']}" for doc in map(json.loads, islice(lines, 200))]
    embedder = LocalMiniLmEmbedder(batch_size=32, threads=2, max_seq_length=256)
    asyncio.run(embedder.embed_documents(texts[:8]))  # load the model outside the timing
    started = time.perf_counter()
    asyncio.run(embedder.embed_documents(texts))
    elapsed = time.perf_counter() - started
    print(f"\nall-MiniLM-L6-v2 (sentence-transformers, torch CPU, 2 threads, batch 32, max_seq 256): "
          f"{len(texts) / elapsed:.1f} SciFact abstracts/s ({len(texts)} in {elapsed:.1f} s)")


def test_onnx_runtime_against_torch_on_the_same_model(tmp_path):
    """The same MiniLM exported to ONNX (fp32, then graph-optimised and int8-quantised per channel) against
    sentence-transformers on torch, interleaved on the same 256 abstracts: throughput and how close each
    embedding stays to torch's (cosine). Needs `pip install onnx onnxruntime` (not Keel dependencies)."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import numpy as np
    import torch
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    with CORPUS.open() as lines:
        texts = [f"{doc['title']} {doc['text']}" for doc in map(json.loads, islice(lines, 256))]
    embedder = LocalMiniLmEmbedder(batch_size=32, threads=2, max_seq_length=256)
    model = embedder.load()
    tokenizer = model.tokenizer
    names = ["input_ids", "attention_mask", "token_type_ids"]

    class Encoder(torch.nn.Module):  # the transformer with positional inputs, as the exporter wants them
        def __init__(self) -> None:
            super().__init__()
            self.bert = model[0].auto_model.eval()

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    sample = tokenizer(["a short one", "and a somewhat longer second sentence"], padding=True, return_tensors="pt")
    fp32, optimised, int8 = tmp_path / "fp32.onnx", tmp_path / "opt.onnx", tmp_path / "int8.onnx"
    torch.onnx.export(Encoder(), tuple(sample[name] for name in names), str(fp32), input_names=names,
                      output_names=["hidden"], opset_version=17, dynamo=False,
                      dynamic_axes={name: {0: "batch", 1: "tokens"} for name in [*names, "hidden"]})
    optimize_model(str(fp32), model_type="bert", num_heads=12, hidden_size=384).save_model_to_file(str(optimised))
    quantize_dynamic(str(optimised), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                     extra_options={"DefaultTensorType": TensorProto.FLOAT})

    def onnx_encoder(path):
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        def encode() -> np.ndarray:
            out = []
            for start in range(0, len(texts), 32):
                batch = tokenizer(texts[start:start + 32], padding=True, truncation=True, max_length=256,
                                  return_tensors="np")
                hidden = session.run(None, {name: batch[name].astype(np.int64) for name in names})[0]
                mask = batch["attention_mask"][..., None].astype(np.float32)
                pooled = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)  # mean pooling, as MiniLM's
                out.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
            return np.vstack(out)
        return encode

    def on_torch() -> np.ndarray:
        return model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)

    backends = {"torch": on_torch, "onnx fp32": onnx_encoder(fp32), "onnx fp32 optimised": onnx_encoder(optimised),
                "onnx int8 (per channel)": onnx_encoder(int8)}
    reference = on_torch()
    rates: dict[str, list[float]] = {name: [] for name in backends}
    for _ in range(3):  # interleaved: the machine's load hits every backend alike
        for name, encode in backends.items():
            started = time.perf_counter()
            encode()
            rates[name].append(len(texts) / (time.perf_counter() - started))
    print(f"\n{len(texts)} SciFact abstracts, batch 32, 2 threads, interleaved x3 (median abstracts/s; cosine to "
          f"torch's embedding, mean / min):")
    for name, encode in backends.items():
        cosines = (encode() * reference).sum(1)
        rate = statistics.median(rates[name])
        print(f"  {name:24s} {rate:5.1f}/s ({rate / statistics.median(rates['torch']):.2f}x torch)  "
              f"cosine {cosines.mean():.4f} / {cosines.min():.4f}")
