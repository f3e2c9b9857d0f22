"""`keel eval …`: quality measurements that run Keel's real pipeline end to end."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import UUID

import typer

eval_app = typer.Typer(help="Measure quality on public benchmarks.", no_args_is_help=True)
MODES = ("vector", "keyword", "hybrid", "graph")


@eval_app.command("retrieval")
def retrieval(
    corpus: Path = typer.Option(..., exists=True, dir_okay=False, help="BEIR corpus.jsonl"),
    queries: Path = typer.Option(..., exists=True, dir_okay=False, help="BEIR queries.jsonl (only text is used)"),
    qrels: Path | None = typer.Option(None, exists=True, dir_okay=False, help="BEIR qrels .tsv; prints metrics"),
    run_out: Path = typer.Option(..., help="TREC run file to write (one per mode: RUN.<mode>.trec)"),
    mode: str = typer.Option("hybrid", help=f"one of {', '.join(MODES)}, several joined by commas, or all"),
    keep_workspace: bool = typer.Option(False, help="keep the throwaway workspace for inspection"),
    workspace: str | None = typer.Option(None, help="id of a workspace an earlier --keep-workspace run kept: "
                                                    "skips upload and ingestion"),
) -> None:
    """Ingest a BEIR corpus into a throwaway workspace, search every query, write a TREC run, score it."""
    from src.cli.common import fail, migrate_to, prepare_database, say, settings
    from src.container import build_container, shutdown
    from src.evaluation.retrieval import evaluate_retrieval
    from src.ports.knowledge import SearchMode

    names = MODES if mode == "all" else tuple(name.strip() for name in mode.split(","))
    if not names or any(name not in MODES for name in names):
        fail(f"--mode must be one of {', '.join(MODES)}, several joined by commas, or all")
    modes = [SearchMode(name) for name in names]
    try:
        reuse = UUID(workspace) if workspace else None
    except ValueError:
        fail("--workspace must be a workspace id (a UUID)")
    config = settings()
    prepare_database(config)
    migrate_to(config)  # the pipeline writes every table of the current schema

    async def run() -> None:
        container = build_container(config)
        try:
            await evaluate_retrieval(container, corpus=corpus, queries=queries, qrels=qrels, run_out=run_out,
                                     modes=modes, say=say, keep_workspace=keep_workspace, reuse=reuse)
        finally:
            await shutdown(container)

    asyncio.run(run())
