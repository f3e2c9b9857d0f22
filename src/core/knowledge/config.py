"""Knowledge settings the core needs (limits, chunk sizes, fusion weights), passed in by the container."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KnowledgeConfig:
    max_document_bytes: int = 20_000_000
    max_batch_documents: int = 1000
    chunk_chars: int = 1000
    chunk_overlap_chars: int = 150
    embed_batch_size: int = 256  # chunks read, embedded and written per step of an ingestion
    max_query_chars: int = 2000
    max_k: int = 100
    candidates: int = 100  # per retriever, before fusion
    fusion: str = "zscore"  # or "rrf" (reciprocal rank fusion)
    keyword_weight: float = 0.5  # hybrid: weight of the keyword side after z-score normalisation
    graph: bool = True  # build the knowledge graph after ingestion
    graph_seeds: int = 5  # graph search: top hybrid hits whose entities start the expansion
    graph_hops: int = 1  # relation hops from those entities
    graph_fan_out: int = 10  # neighbours per entity and chunks per entity followed
    graph_hub_mentions: int = 200  # traversals do not go on through entities more chunks mention than this
    graph_weight: float = 0.5  # the graph ranking's weight against the hybrid one
    graph_merge_similarity: float = 0.92  # entity names at least this similar (cosine) are one entity; 0 = off
