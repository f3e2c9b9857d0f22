"""`keel eval retrieval` as a person runs it, on a slice of SciFact (train): the corpus goes through the real
upload → ingestion → search path; the TREC run and the printed nDCG@10 / Recall@100 come out."""

from __future__ import annotations

import csv
import json
import re
from itertools import islice

import pytest

from src.config import REPO_ROOT
from tests.conftest import run_keel

pytestmark = pytest.mark.slow
SCIFACT = REPO_ROOT.parent / "shared" / "datasets" / "scifact"


@pytest.fixture
def scifact_slice(tmp_path):
    """80 documents, the train queries judged against them, and those judgments."""
    if not (SCIFACT / "corpus.jsonl").exists():
        pytest.skip("the SciFact dataset is not beside the repository (../shared/datasets/scifact)")
    with (SCIFACT / "corpus.jsonl").open() as lines:
        corpus = list(islice(lines, 80))
    ids = {json.loads(line)["_id"] for line in corpus}
    with (SCIFACT / "qrels-train.tsv").open() as handle:
        judged = [row for row in csv.DictReader(handle, delimiter="\t") if row["corpus-id"] in ids]
    wanted = {row["query-id"] for row in judged}
    with (SCIFACT / "queries-train.jsonl").open() as lines:
        queries = [line for line in lines if json.loads(line)["_id"] in wanted]
    (tmp_path / "corpus.jsonl").write_text("".join(corpus))
    (tmp_path / "queries.jsonl").write_text("".join(queries))
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{row['query-id']}\t{row['corpus-id']}\t{row['score']}\n" for row in judged))
    return tmp_path, len(queries)


def _eval(folder, env, *options: str):
    result = run_keel("eval", "retrieval", "--corpus", str(folder / "corpus.jsonl"),
                      "--queries", str(folder / "queries.jsonl"), "--qrels", str(folder / "qrels.tsv"),
                      "--run-out", str(folder / "run.trec"), *options, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def _figures(output: str, mode: str) -> tuple[float, float]:
    found = re.search(rf"{mode}\s+ndcg@10 ([0-9.]+)\s+recall@100 ([0-9.]+)", output)
    assert found, (mode, output[-2000:])
    return float(found[1]), float(found[2])


def test_eval_retrieval_writes_trec_runs_and_prints_the_metrics(scifact_slice, test_env):
    folder, query_count = scifact_slice
    output = _eval(folder, test_env, "--mode", "all", "--keep-workspace")
    figures = {}
    for mode in ("vector", "keyword", "hybrid", "graph"):
        figures[mode] = _figures(output, mode)
        lines = (folder / f"run.{mode}.trec").read_text().splitlines()
        per_query: dict[str, list[list[str]]] = {}
        for line in lines:
            qid, q0, doc_id, rank, score, tag = line.split()
            assert q0 == "Q0" and tag == f"keel-{mode}"
            per_query.setdefault(qid, []).append([doc_id, rank, score])
        assert len(per_query) == query_count
        for ranked in per_query.values():
            assert [int(rank) for _, rank, _ in ranked] == list(range(1, len(ranked) + 1))
            assert len({doc_id for doc_id, _, _ in ranked}) == len(ranked) <= 100  # one line per document
            scores = [float(score) for _, _, score in ranked]
            assert scores == sorted(scores, reverse=True)
    # A retriever that works finds most judged abstracts among 80; a broken one scores near zero.
    assert all(ndcg > 0.6 and recall > 0.85 for ndcg, recall in figures.values()), figures

    kept = re.search(r"kept workspace ([0-9a-f-]{36})", output)
    assert kept, output[-2000:]
    again = _eval(folder, test_env, "--mode", "hybrid", "--workspace", kept[1])  # no upload, no ingestion
    assert "reusing workspace" in again and "ingested" not in again
    assert _figures(again, "hybrid") == figures["hybrid"]


def test_the_onnx_int8_backend_runs_the_whole_pipeline(scifact_slice, test_env):
    """The real upload → ingestion → search path with every text embedded by the int8 ONNX graph."""
    folder, _ = scifact_slice
    output = _eval(folder, {**test_env, "KEEL_EMBEDDING_BACKEND": "onnx-int8"}, "--mode", "vector")
    ndcg, recall = _figures(output, "vector")
    assert ndcg > 0.6 and recall > 0.85, (ndcg, recall)
