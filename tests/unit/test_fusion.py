"""Fusion of a vector and a keyword ranking, and of that with the knowledge graph's."""

from __future__ import annotations

import uuid

import pytest

from src.core.knowledge.fusion import Fused, reciprocal_rank, single, weighted_zscore, with_graph
from src.ports.knowledge import Candidate

A, B, C, D = (uuid.uuid4() for _ in range(4))


def test_zscore_fusion_rewards_agreement_and_keeps_both_raw_scores():
    vector = [Candidate(A, 0.80), Candidate(B, 0.70), Candidate(C, 0.20)]
    keyword = [Candidate(B, 12.0), Candidate(D, 11.0), Candidate(A, 1.0)]
    fused = weighted_zscore(vector, keyword, keyword_weight=0.5)
    assert fused[0].chunk_id == B  # high on both sides beats top-of-one
    assert {item.chunk_id for item in fused} == {A, B, C, D}
    by_id = {item.chunk_id: item for item in fused}
    assert (by_id[B].vector_score, by_id[B].keyword_score) == (0.70, 12.0)
    assert by_id[D].vector_score is None and by_id[C].keyword_score is None
    assert [item.score for item in fused] == sorted((item.score for item in fused), reverse=True)


@pytest.mark.parametrize(("weight", "winner"), [(0.0, A), (1.0, B)])
def test_the_keyword_weight_moves_between_the_two_rankings(weight, winner):
    vector = [Candidate(A, 0.9), Candidate(B, 0.1), Candidate(C, 0.5)]
    keyword = [Candidate(B, 9.0), Candidate(A, 1.0), Candidate(C, 5.0)]
    assert weighted_zscore(vector, keyword, weight)[0].chunk_id == winner


def test_scales_do_not_matter_to_zscore_fusion():
    vector = [Candidate(A, 0.9), Candidate(B, 0.5), Candidate(C, 0.1)]
    keyword = [Candidate(C, 3.0), Candidate(B, 2.0), Candidate(A, 1.0)]
    scaled = [Candidate(c.chunk_id, c.score * 1000) for c in keyword]
    order = [item.chunk_id for item in weighted_zscore(vector, keyword, 0.3)]
    assert order == [item.chunk_id for item in weighted_zscore(vector, scaled, 0.3)]


def test_one_sided_or_empty_inputs():
    assert weighted_zscore([], [], 0.3) == []
    only = weighted_zscore([Candidate(A, 0.5), Candidate(B, 0.4)], [], 0.3)
    assert [item.chunk_id for item in only] == [A, B]
    same = weighted_zscore([Candidate(A, 0.5), Candidate(B, 0.5)], [], 0.3)  # no spread: no division by zero
    assert len(same) == 2


def test_reciprocal_rank_fusion_sums_inverse_ranks():
    vector = [Candidate(A, 0.9), Candidate(B, 0.8)]
    keyword = [Candidate(B, 5.0), Candidate(C, 4.0)]
    fused = reciprocal_rank(vector, keyword, k=60)
    assert fused[0].chunk_id == B
    assert fused[0].score == pytest.approx(1 / 62 + 1 / 61)


def test_a_single_ranking_is_sorted_and_labelled():
    ranked = single([Candidate(A, 1.0), Candidate(B, 3.0)], is_vector=False)
    assert [item.chunk_id for item in ranked] == [B, A]
    assert ranked[0].keyword_score == 3.0 and ranked[0].vector_score is None


def test_the_graph_lifts_linked_chunks_but_never_above_the_seeds_it_started_from():
    E, F = uuid.uuid4(), uuid.uuid4()
    ranked = [Fused(chunk, 1.0 - i / 10, None, None) for i, chunk in enumerate([A, B, C, D, E])]
    fused = with_graph(ranked, [A, B], {D: 0.9, E: 0.4, F: 2.0}, graph_weight=0.5)
    assert [item.chunk_id for item in fused][:2] == [A, B]  # the seeds keep the lead
    order = [item.chunk_id for item in fused]
    assert order.index(D) < order.index(C)  # linked through the graph: moves up
    assert order.index(F) > order.index(D)  # only the graph found it: below those both found
    assert with_graph(ranked, [A], {}, graph_weight=0.5)[0].chunk_id == A
