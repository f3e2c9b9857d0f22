"""`keel`: up, serve, worker, migrate, test, and db start|stop|status|url."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import typer

from src.config import REPO_ROOT, ConfigError, Settings, load_settings
from src.localdb.errors import LocalDbError
from src.localdb.stack import ensure_database_running, local_cluster

app = typer.Typer(help="Keel: a backend for AI products (one service, one Postgres).", no_args_is_help=True)
db_app = typer.Typer(help="The local PostgreSQL (+pgvector, +AGE) under KEEL_HOME.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def say(message: str) -> None:
    typer.secho(f"keel: {message}", fg=typer.colors.CYAN, err=True)


def fail(message: str) -> None:
    typer.secho(f"keel: error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        fail(str(exc))


def prepare_database(config: Settings, database: str | None = None, *, fast_commit: bool = False) -> None:
    """Start the local cluster when Keel uses it; with KEEL_DATABASE_URL there is nothing to start."""
    if config.embedded_database:
        ensure_database_running(config, database or config.db_name, say, fast_commit=fast_commit)


def migrate_to_head(config: Settings, database: str | None = None) -> None:
    from src.cli.migrate import upgrade

    say("applying migrations")
    try:
        upgrade(config, "head", database)
    except Exception as exc:  # alembic and the driver raise many kinds; the person needs one line
        fail(f"migration failed: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}")


@app.command()
def up() -> None:
    """Everything on embedded defaults: database, migrations, a worker and the API; prints the URL."""
    from src.cli.serve import run_api, start_worker_process, stop_worker_process

    config = settings()
    started = time.monotonic()
    try:
        prepare_database(config)
        migrate_to_head(config)
        say("starting a worker")
        worker = start_worker_process(config)
        url = f"http://{config.host}:{config.port}"

        def announce() -> None:
            say(f"ready in {time.monotonic() - started:.1f}s: open {url}/graphql  (health: {url}/healthz)")

        try:
            run_api(config, announce)
        finally:
            stop_worker_process(worker)
    except LocalDbError as exc:
        fail(str(exc))


@app.command()
def serve() -> None:
    """Run the API (GraphQL at /graphql, /healthz, /metrics)."""
    from src.cli.serve import run_api

    config = settings()
    try:
        prepare_database(config)
        run_api(config, lambda: say(f"serving on http://{config.host}:{config.port}/graphql"))
    except LocalDbError as exc:
        fail(str(exc))


@app.command()
def worker() -> None:
    """Run Dramatiq workers (KEEL_WORKER_PROCESSES x KEEL_WORKER_THREADS)."""
    from src.cli.serve import worker_command

    config = settings()
    try:
        prepare_database(config)
    except LocalDbError as exc:
        fail(str(exc))
    command = worker_command(config)
    os.execv(command[0], command)


@app.command()
def migrate(revision: str = typer.Option("head", help="target revision; `base` with --down empties the schema"),
            down: bool = typer.Option(False, "--down", help="downgrade to the revision instead")) -> None:
    """Apply (or with --down, revert) database migrations."""
    config = settings()
    try:
        prepare_database(config)
    except LocalDbError as exc:
        fail(str(exc))
    if down:
        from src.cli.migrate import downgrade

        downgrade(config, revision)
    elif revision == "head":
        migrate_to_head(config)
    else:
        from src.cli.migrate import upgrade

        upgrade(config, revision)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def test(ctx: typer.Context) -> None:
    """Layer contracts, then the whole test suite (extra arguments go to pytest)."""
    config = settings()
    try:
        prepare_database(config, test_database_name(config), fast_commit=True)
    except LocalDbError as exc:
        fail(str(exc))
    from src.cli.test_tools import ensure_test_tools

    ensure_test_tools(say)
    bindir = os.path.dirname(sys.executable)
    say("checking layer contracts (import-linter)")
    if subprocess.run([os.path.join(bindir, "lint-imports"), "--no-cache"], cwd=REPO_ROOT).returncode != 0:
        fail("layer contracts are broken (see above)")
    say("linting (ruff)")
    if subprocess.run([os.path.join(bindir, "ruff"), "check", "--quiet", "src", "tests", "benchmarks", "migrations"],
                      cwd=REPO_ROOT).returncode != 0:
        fail("ruff found problems (see above; `ruff check --fix` mends most)")
    say("running the tests")
    code = subprocess.run([sys.executable, "-m", "pytest", *ctx.args], cwd=REPO_ROOT).returncode
    raise typer.Exit(code)


def test_database_name(config: Settings) -> str:
    return f"{config.db_name}_test"


@db_app.command("start")
def db_start() -> None:
    """Install (once) and start the local cluster, and create Keel's database."""
    config = settings()
    try:
        prepare_database(config)
    except LocalDbError as exc:
        fail(str(exc))
    say(f"running: {config.libpq_url()}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the local cluster (its data stays)."""
    config = settings()
    try:
        cluster = local_cluster(config, say, install=False)
        say("stopped" if cluster.stop() else "was not running")
    except LocalDbError as exc:
        fail(str(exc))


@db_app.command("status")
def db_status() -> None:
    """Installed stack, data folder, running or not, disk footprint."""
    config = settings()
    if not config.embedded_database:
        say("KEEL_DATABASE_URL is set; Keel manages no local database")
        return
    try:
        cluster = local_cluster(config, say, install=False)
    except LocalDbError as exc:
        fail(str(exc))
    state = cluster.status()
    typer.echo(f"stack:    {cluster.install.kind} ({cluster.install.root}, {_size(cluster.install.root)})")
    typer.echo(f"data:     {state.data_dir} (PostgreSQL {state.version or '-'}, {_size(state.data_dir)})")
    typer.echo(f"running:  {'yes' if state.running else 'no'} on 127.0.0.1:{state.port}")
    typer.echo(f"url:      {config.libpq_url()}")
    raise typer.Exit(0 if state.running else 3)


@db_app.command("url")
def db_url() -> None:
    """Print the database URL Keel uses."""
    typer.echo(settings().libpq_url())


def _size(path) -> str:
    if not path.exists():
        return "absent"
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return f"{total / 1e6:.0f} MB"


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


