"""Embedding throughput of the default local model on real abstracts (printed, never asserted).

Run: ./keel test benchmarks -k embedding -s
"""

from __future__ import annotations

import asyncio
import json
import time
from itertools import islice

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
