"""BEIR files in, TREC run files out, and nDCG@10 / Recall@100 with trec_eval's definitions (pytrec_eval)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytrec_eval

RUN_DEPTH = 100
MEASURES = {"ndcg_cut.10", "recall.100"}


@dataclass(frozen=True, slots=True)
class BeirDocument:
    id: str
    title: str
    text: str

    @property
    def retrieval_text(self) -> str:
        return f"{self.title} {self.text}".strip()


def read_corpus(path: Path) -> Iterator[BeirDocument]:
    with path.open() as lines:
        for line in lines:
            if line.strip():
                row = json.loads(line)
                yield BeirDocument(str(row["_id"]), row.get("title", ""), row.get("text", ""))


def read_queries(path: Path) -> dict[str, str]:
    """Query id -> text. Only the text: metadata (it names the evidence) never reaches a retriever."""
    with path.open() as lines:
        return {str(row["_id"]): row["text"] for row in map(json.loads, filter(str.strip, lines))}


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open() as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    return qrels


def fold_to_documents(hits: Iterable[tuple[str, float]], depth: int = RUN_DEPTH) -> list[tuple[str, float]]:
    """Chunk hits (doc id, score), best first, to one line per document: its best chunk's score."""
    best: dict[str, float] = {}
    for doc_id, score in hits:
        if doc_id not in best or score > best[doc_id]:
            best[doc_id] = score
    return sorted(best.items(), key=lambda item: (-item[1], item[0]))[:depth]


def write_trec_run(path: Path, run: dict[str, list[tuple[str, float]]], tag: str) -> None:
    """`qid Q0 docid rank score tag`, ranks from 1, best first."""
    with path.open("w") as out:
        for qid, ranked in run.items():
            for rank, (doc_id, score) in enumerate(ranked, start=1):
                out.write(f"{qid} Q0 {doc_id} {rank} {score:.6f} {tag}\n")


def evaluate(run: dict[str, list[tuple[str, float]]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """Mean nDCG@10 and Recall@100 over the judged queries (a judged query with no hits scores 0)."""
    scored = {qid: {doc: float(score) for doc, score in ranked} for qid, ranked in run.items()}
    judged = {qid: scored.get(qid) or {"__none__": 0.0} for qid in qrels}
    per_query = pytrec_eval.RelevanceEvaluator(qrels, MEASURES).evaluate(judged)
    count = len(per_query) or 1
    return {
        "ndcg@10": sum(q["ndcg_cut_10"] for q in per_query.values()) / count,
        "recall@100": sum(q["recall_100"] for q in per_query.values()) / count,
    }
