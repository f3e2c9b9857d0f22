"""`keel`: up, serve, worker, migrate, test, and db start|stop|status|url|backup|restore."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import typer

from src.cli.billing import billing_app
from src.cli.common import fail, migrate_to, prepare_database, reported, say, settings
from src.cli.evaluate import eval_app
from src.config import REPO_ROOT, Settings
from src.localdb.stack import local_cluster

app = typer.Typer(help="Keel: a backend for AI products (one service, one Postgres).", no_args_is_help=True)
db_app = typer.Typer(help="The local PostgreSQL (+pgvector, +AGE) under KEEL_HOME.", no_args_is_help=True)
users_app = typer.Typer(help="Accounts, from the operator's console.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")


@app.command()
def up() -> None:
    """Everything on embedded defaults: database, migrations, a worker and the API; prints the URL."""
    from src.cli.serve import run_api, start_worker_process, stop_worker_process

    started = time.monotonic()
    config = settings()
    prepare_database(config)
    migrate_to(config)
    say("starting a worker")
    worker = start_worker_process(config)
    url = f"http://{config.host}:{config.port}"

    def announce() -> None:
        say(f"ready in {time.monotonic() - started:.1f}s: open {url}/  (the console; GraphQL at {url}/graphql, "
            f"health at {url}/healthz)")

    try:
        with reported():
            run_api(config, announce)
    finally:
        stop_worker_process(worker)


@app.command()
def serve(workers: int = typer.Option(None, "--workers", min=1, max=64,
                                      help="API processes on the one port (default KEEL_API_PROCESSES)")) -> None:
    """Run the API (GraphQL at /graphql, /healthz, /metrics)."""
    from src.cli.serve import run_api

    config = settings()
    prepare_database(config)
    processes = workers or config.api_processes
    with reported():
        run_api(config, lambda: say(f"serving the console on http://{config.host}:{config.port}/ and GraphQL on "
                                    f"http://{config.host}:{config.port}/graphql ({processes} process"
                                    f"{'es' if processes > 1 else ''})"), processes)


@app.command()
def worker() -> None:
    """Run Dramatiq workers (KEEL_WORKER_PROCESSES x KEEL_WORKER_THREADS)."""
    from src.cli.serve import worker_command, worker_environment

    config = settings()
    prepare_database(config)
    command = worker_command(config)
    os.execve(command[0], command, worker_environment(dict(os.environ)))


@app.command()
def migrate(
    revision: str = typer.Option("head", help="target revision; `base` with --down empties the schema"),
    down: bool = typer.Option(False, "--down", help="downgrade to the revision instead"),
) -> None:
    """Apply (or with --down, revert) database migrations."""
    config = settings()
    prepare_database(config)
    migrate_to(config, revision, down=down)


@app.command()
def lock() -> None:
    """Resolve the dependencies again in a fresh virtual environment and write requirements.lock."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="keel-lock-") as folder:
        python = os.path.join(folder, "bin", "python")
        say("resolving pyproject.toml's dependencies in a fresh virtual environment (a few minutes)")
        subprocess.run([sys.executable, "-m", "venv", folder], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "-e", f"{REPO_ROOT}[dev]"], check=True)
        frozen = subprocess.run([python, "-m", "pip", "freeze", "--exclude-editable"], check=True,
                                capture_output=True, text=True).stdout
    pinned = [line for line in frozen.splitlines() if line and not line.startswith(("keel", "-e "))]
    header = (REPO_ROOT / "requirements.lock").read_text().split("\n")[:3]
    (REPO_ROOT / "requirements.lock").write_text("\n".join([*header, *pinned]) + "\n")
    say(f"requirements.lock: {len(pinned)} packages; commit it with pyproject.toml")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def test(ctx: typer.Context) -> None:
    """Layer contracts, lint and types, then the whole test suite (extra arguments go to pytest)."""
    from src.cli.test_tools import ensure_test_tools

    config = settings()
    prepare_database(config, test_database_name(config), fast_commit=True)
    ensure_test_tools(say)
    tools = os.path.dirname(sys.executable)
    say("checking layer contracts (import-linter)")
    if subprocess.run([os.path.join(tools, "lint-imports"), "--no-cache"], cwd=REPO_ROOT).returncode != 0:
        fail("layer contracts are broken (see above)")
    say("linting (ruff)")
    lint = [os.path.join(tools, "ruff"), "check", "--quiet", "src", "tests", "benchmarks", "migrations"]
    if subprocess.run(lint, cwd=REPO_ROOT).returncode != 0:
        fail("ruff found problems (see above; `ruff check --fix` mends most)")
    say("type checking the core and the ports (mypy --strict)")
    if subprocess.run([os.path.join(tools, "mypy")], cwd=REPO_ROOT).returncode != 0:
        fail("mypy found problems (see above)")
    say("running the tests")
    raise typer.Exit(subprocess.run([sys.executable, "-m", "pytest", *ctx.args], cwd=REPO_ROOT).returncode)


def test_database_name(config: Settings) -> str:
    return f"{config.db_name}_test"


@db_app.command("start")
def db_start() -> None:
    """Install (once) and start the local cluster, and create Keel's database."""
    config = settings()
    prepare_database(config)
    say(f"running: {config.libpq_url()}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the local cluster (its data stays)."""
    with reported():
        cluster = local_cluster(settings(), say, install=False)
        say("stopped" if cluster.stop() else "was not running")


@db_app.command("status")
def db_status() -> None:
    """Installed stack, data folder, running or not, disk footprint."""
    config = settings()
    if not config.embedded_database:
        say("KEEL_DATABASE_URL is set; Keel manages no local database")
        return
    with reported():
        cluster = local_cluster(config, say, install=False)
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


@db_app.command("backup")
def db_backup(path: Path = typer.Argument(None, help="the file to write (default: KEEL_HOME/backups/<db>-<time>.dump)"),
              database: str = typer.Option(None, help="another database of the cluster")) -> None:
    """Write the whole database (tables, vectors, graphs, queued jobs) to one file with pg_dump."""
    from src.localdb.backup import backup

    config = settings()
    prepare_database(config, database)
    target = path or config.home / "backups" / f"{database or config.db_name}-{time.strftime('%Y%m%d-%H%M%S')}.dump"
    with reported():
        done = backup(config, target, database)
    say(f"backed up to {done.path} ({done.bytes / 1e6:.1f} MB in {done.seconds:.1f} s)")


@db_app.command("restore")
def db_restore(path: Path = typer.Argument(..., help="a file `keel db backup` wrote"),
               database: str = typer.Option(None, help="restore into this database (made when missing)")) -> None:
    """Load a backup into an empty database (refuses one holding data), then re-point its AGE graphs."""
    from src.localdb.backup import restore

    config = settings()
    prepare_database(config, database)
    with reported():
        done = restore(config, path, database)
    say(f"restored {done.path} into {database or config.db_name} in {done.seconds:.1f} s; "
        "`keel migrate` brings an older backup up to date")


@users_app.command("set-role")
def users_set_role(email: str, role: str = typer.Argument(..., help="user or admin")) -> None:
    """Grant or withdraw the admin role (how the first admin is made); audited as the console."""
    import asyncio

    from src.container import build_container, shutdown
    from src.ports.identity import Role
    from src.ports.shared import DomainError

    if role not in {r.value for r in Role}:
        fail(f"role must be one of: {', '.join(r.value for r in Role)}")
    config = settings()
    prepare_database(config)

    async def run() -> None:
        services = build_container(config)
        try:
            user = await services.grant_role_from_console().execute(email, Role(role))
            say(f"{user.email} is now {user.role}")
        finally:
            await shutdown(services)

    try:
        asyncio.run(run())
    except DomainError as exc:
        fail(str(exc))


def _size(path) -> str:
    if not path.exists():
        return "absent"
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return f"{total / 1e6:.0f} MB"


app.add_typer(eval_app, name="eval")
app.add_typer(billing_app, name="billing")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
