"""Backups of Keel's database with pg_dump's custom format: every table, vector, keyword index, AGE graph
and queued job; restored with pg_restore into an empty database.

AGE keeps each graph's id as a bare oid (its schema's oid in the dumped cluster, apache/age#2503): after a
restore the graphs are re-pointed at their schemas' new oids, or every Cypher query would fail."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from src.config import Settings
from src.localdb.errors import LocalDbError
from src.localdb.install import installed

# Run in one transaction with the foreign key from labels to graphs switched off while both move.
REPOINT_AGE_GRAPHS = """
DO $$ BEGIN
  IF to_regclass('ag_catalog.ag_graph') IS NOT NULL THEN
    SET LOCAL session_replication_role = replica;
    UPDATE ag_catalog.ag_label AS label SET graph = graph.namespace::oid FROM ag_catalog.ag_graph AS graph
      WHERE label.graph = graph.graphid AND graph.graphid <> graph.namespace::oid;
    UPDATE ag_catalog.ag_graph SET graphid = namespace::oid WHERE graphid <> namespace::oid;
  END IF;
END $$;
"""
USER_TABLES = "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"


@dataclass(frozen=True)
class Outcome:
    path: Path
    bytes: int
    seconds: float


def _tool(settings: Settings, name: str) -> list[str]:
    """The local stack's own pg_dump/pg_restore/psql (its major version); else the one on PATH."""
    stack = installed(settings.home)
    if stack is not None and stack.chroot is None and (stack.bindir / name).exists():
        return [str(stack.bindir / name)]
    if stack is not None and stack.chroot is not None:
        return ["chroot", str(stack.chroot), str(stack.bindir / name)]
    found = shutil.which(name)
    if found is None:
        raise LocalDbError(f"{name} is not installed: install PostgreSQL's client tools")
    return [found]


def _run(command: list[str], what: str, **options) -> subprocess.CompletedProcess:
    options.setdefault("stdout", subprocess.PIPE)
    done = subprocess.run(command, stderr=subprocess.PIPE, **options)
    if done.returncode != 0:
        error = done.stderr.decode(errors="replace").strip().splitlines()
        raise LocalDbError(f"{what} failed: {error[-1] if error else f'exit {done.returncode}'}")
    return done


def backup(settings: Settings, path: Path, database: str | None = None) -> Outcome:
    """Writes the database to `path` (pg_dump's compressed custom format), atomically."""
    started = time.monotonic()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as out:
        _run([*_tool(settings, "pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
              f"--dbname={settings.libpq_url(database)}"], "pg_dump", stdout=out)
    partial.replace(path)
    return Outcome(path, path.stat().st_size, time.monotonic() - started)


def restore(settings: Settings, path: Path, database: str | None = None) -> Outcome:
    """Loads a backup into an empty database (never over data: a mistaken restore must lose nothing)."""
    if not path.is_file():
        raise LocalDbError(f"{path} is not a file")
    started = time.monotonic()
    url = settings.libpq_url(database)
    psql = [*_tool(settings, "psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", f"--dbname={url}"]
    tables = int(_run([*psql, "-c", USER_TABLES], "psql").stdout.decode().strip() or 0)
    if tables:
        raise LocalDbError(f"the database {url.rsplit('/', 1)[-1]} is not empty ({tables} tables): restore into "
                           "a new one (--database NAME, or KEEL_DB_NAME) or drop this one first")
    with path.open("rb") as dump:
        _run([*_tool(settings, "pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
              "--single-transaction", f"--dbname={url}"], "pg_restore", stdin=dump)
    _run([*psql, "--single-transaction", "-c", REPOINT_AGE_GRAPHS, "-c", "ANALYZE"], "re-pointing AGE graphs")
    return Outcome(path, path.stat().st_size, time.monotonic() - started)
