"""One call for the CLI and the tests: the local cluster installed, running, with a database ready."""

from __future__ import annotations

from collections.abc import Callable

from src.config import Settings
from src.localdb.cluster import Cluster
from src.localdb.errors import LocalDbError
from src.localdb.install import ensure_installed, installed


def local_cluster(settings: Settings, say: Callable[[str], None] = print, *, install: bool = True) -> Cluster:
    """The cluster under KEEL_HOME; installs the binaries first when `install` and they are missing."""
    if not settings.embedded_database:
        raise LocalDbError("KEEL_DATABASE_URL is set: Keel uses that database and manages no local one")
    found = ensure_installed(settings.home, settings.pg_stack, say) if install else installed(settings.home)
    if found is None:
        raise LocalDbError("the local PostgreSQL is not installed yet; run `keel db start`")
    return Cluster(found, settings.home, settings.db_port)


def ensure_database_running(settings: Settings, database: str, say: Callable[[str], None] = print,
                            *, fast_commit: bool = False) -> Cluster:
    """Install if needed, start if stopped, create `database` if missing. Idempotent and quick when done."""
    cluster = local_cluster(settings, say)
    cluster.start(say)
    cluster.ensure_database(database, fast_commit=fast_commit)
    return cluster
