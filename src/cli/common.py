"""What every `keel` command shares: its one-line messages, its settings, the local database it needs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer

from src.config import ConfigError, Settings, load_settings
from src.localdb.errors import LocalDbError
from src.localdb.stack import ensure_database_running


def say(message: str) -> None:
    typer.secho(f"keel: {message}", fg=typer.colors.CYAN, err=True)


def fail(message: str) -> None:
    typer.secho(f"keel: error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


@contextlib.contextmanager
def reported() -> Iterator[None]:
    """Expected failures (bad settings, the local stack) end the command with one line, no traceback."""
    try:
        yield
    except (ConfigError, LocalDbError) as exc:
        fail(str(exc))


def settings() -> Settings:
    with reported():
        return load_settings()


def prepare_database(config: Settings, database: str | None = None, *, fast_commit: bool = False) -> None:
    """Start the local cluster when Keel uses it; with KEEL_DATABASE_URL there is nothing to start."""
    if config.embedded_database:
        with reported():
            ensure_database_running(config, database or config.db_name, say, fast_commit=fast_commit)


def migrate_to(config: Settings, revision: str = "head", *, down: bool = False) -> None:
    from src.cli.migrate import downgrade, upgrade

    say(f"migrating {'down' if down else 'up'} to {revision}")
    try:
        (downgrade if down else upgrade)(config, revision)
    except Exception as exc:  # alembic and the driver raise many kinds; a person needs one line
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        fail(f"migration failed: {first_line}")
