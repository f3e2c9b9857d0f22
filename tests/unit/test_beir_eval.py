"""Retrieval evaluation: BEIR readers on the real SciFact files, TREC run format, metric values checked
against numbers worked out by hand from the trec_eval definitions."""

from __future__ import annotations

import math

import pytest

from src.config import REPO_ROOT
from src.evaluation.beir import evaluate, fold_to_documents, read_corpus, read_qrels, read_queries, write_trec_run

SCIFACT = REPO_ROOT.parent / "shared" / "datasets" / "scifact"


def test_ndcg_and_recall_match_the_hand_computed_values():
    qrels = {"q1": {"d1": 1, "d2": 1}, "q2": {"d9": 1}}
    run = {"q1": [("d3", 3.0), ("d1", 2.0), ("d2", 1.0)]}  # q2 got nothing: it still counts, as 0
    ideal = 1 + 1 / math.log2(3)
    got = 1 / math.log2(3) + 1 / math.log2(4)
    metrics = evaluate(run, qrels)
    assert metrics["ndcg@10"] == pytest.approx((got / ideal + 0) / 2, abs=1e-4)
    assert metrics["recall@100"] == pytest.approx((1 + 0) / 2)


def test_chunks_fold_to_their_best_scoring_document():
    hits = [("a", 0.9), ("b", 0.8), ("a", 0.95), ("c", 0.1)]
    assert fold_to_documents(hits, depth=2) == [("a", 0.95), ("b", 0.8)]


def test_the_run_file_is_trec_format(tmp_path):
    path = tmp_path / "run.trec"
    write_trec_run(path, {"7": [("d1", 2.5), ("d2", 1.0)]}, tag="hybrid")
    assert path.read_text().splitlines() == ["7 Q0 d1 1 2.500000 hybrid", "7 Q0 d2 2 1.000000 hybrid"]


def test_scifact_train_reads_whole_and_an_oracle_run_scores_perfectly():
    corpus = list(read_corpus(SCIFACT / "corpus.jsonl"))
    queries = read_queries(SCIFACT / "queries-train.jsonl")
    qrels = read_qrels(SCIFACT / "qrels-train.tsv")
    assert (len(corpus), len(queries), sum(len(d) for d in qrels.values())) == (5183, 809, 919)
    assert all(isinstance(text, str) for text in queries.values())
    oracle = {qid: [(doc, 1.0) for doc in docs] for qid, docs in qrels.items()}
    assert evaluate(oracle, qrels) == {"ndcg@10": pytest.approx(1.0), "recall@100": pytest.approx(1.0)}
