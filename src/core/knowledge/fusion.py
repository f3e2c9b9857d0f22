"""Fusing a vector ranking with a keyword ranking into one.

Scores of the two retrievers live on different scales (cosine similarity vs BM25), so each list is
standardised (z-scores) before a weighted sum. A chunk found by only one retriever gets the other side's
lowest standardised score: as good as the worst chunk that side did find, no better. Reciprocal rank fusion
is kept as the alternative that needs no scores at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import fmean, pstdev
from uuid import UUID

from src.ports.knowledge import Candidate

RRF_K = 60


@dataclass(frozen=True, slots=True)
class Fused:
    chunk_id: UUID
    score: float
    vector_score: float | None
    keyword_score: float | None


def _standardised(candidates: list[Candidate]) -> dict[UUID, float]:
    if not candidates:
        return {}
    scores = [candidate.score for candidate in candidates]
    mean, spread = fmean(scores), pstdev(scores) or 1.0
    return {candidate.chunk_id: (candidate.score - mean) / spread for candidate in candidates}


def _raw(candidates: list[Candidate]) -> dict[UUID, float]:
    return {candidate.chunk_id: candidate.score for candidate in candidates}


def weighted_zscore(vector: list[Candidate], keyword: list[Candidate], keyword_weight: float) -> list[Fused]:
    vector_z, keyword_z = _standardised(vector), _standardised(keyword)
    vector_floor = min(vector_z.values(), default=0.0)
    keyword_floor = min(keyword_z.values(), default=0.0)
    vector_raw, keyword_raw = _raw(vector), _raw(keyword)
    fused = [
        Fused(chunk_id,
              (1 - keyword_weight) * vector_z.get(chunk_id, vector_floor)
              + keyword_weight * keyword_z.get(chunk_id, keyword_floor),
              vector_raw.get(chunk_id), keyword_raw.get(chunk_id))
        for chunk_id in vector_z.keys() | keyword_z.keys()
    ]
    return sorted(fused, key=lambda item: item.score, reverse=True)


def reciprocal_rank(vector: list[Candidate], keyword: list[Candidate], k: int = RRF_K) -> list[Fused]:
    ranks: dict[UUID, float] = {}
    for ranking in (vector, keyword):
        ordered = sorted(ranking, key=lambda candidate: candidate.score, reverse=True)
        for rank, candidate in enumerate(ordered, start=1):
            ranks[candidate.chunk_id] = ranks.get(candidate.chunk_id, 0.0) + 1.0 / (k + rank)
    vector_raw, keyword_raw = _raw(vector), _raw(keyword)
    fused = [Fused(chunk_id, score, vector_raw.get(chunk_id), keyword_raw.get(chunk_id))
             for chunk_id, score in ranks.items()]
    return sorted(fused, key=lambda item: item.score, reverse=True)


def single(candidates: list[Candidate], *, is_vector: bool) -> list[Fused]:
    ordered = sorted(candidates, key=lambda candidate: candidate.score, reverse=True)
    return [Fused(c.chunk_id, c.score, c.score if is_vector else None, None if is_vector else c.score)
            for c in ordered]


def with_graph(ranked: list[Fused], seeds: list[UUID], graph_scores: dict[UUID, float], graph_weight: float,
               k: int = RRF_K) -> list[Fused]:
    """Re-ranks a fused ranking with the graph's: reciprocal ranks, the graph's weighted. The seeds (the hits
    the expansion started from) lead the graph's ranking, as everything it found hangs off them; then the
    chunks it reached, best linked first. A chunk only the graph found enters below the chunks both found."""
    scores = {item.chunk_id: 1.0 / (k + rank) for rank, item in enumerate(ranked, start=1)}
    reached = sorted((chunk for chunk in graph_scores if chunk not in seeds), key=lambda chunk_id:
                     graph_scores[chunk_id], reverse=True)
    for rank, chunk_id in enumerate([*seeds, *reached], start=1):
        scores[chunk_id] = scores.get(chunk_id, 0.0) + graph_weight / (k + rank)
    known = {item.chunk_id: item for item in ranked}
    fused = [Fused(chunk_id, score, known[chunk_id].vector_score if chunk_id in known else None,
                   known[chunk_id].keyword_score if chunk_id in known else None)
             for chunk_id, score in scores.items()]
    return sorted(fused, key=lambda item: item.score, reverse=True)
