"""A PostgreSQL cluster under KEEL_HOME on a non-default loopback port: init, start, stop, status.

initdb and postgres refuse to run as root, so as root the server runs as a dedicated system user
(wheel recipe) or as `postgres` inside the trixie root. A data folder is never deleted here.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from src.localdb.errors import LocalDbError
from src.localdb.install import PgInstall

SERVER_USER = "keelpg"
SUPERUSER = "keel"


@dataclass(frozen=True)
class ClusterStatus:
    running: bool
    data_dir: Path
    port: int
    version: str | None


class Cluster:
    def __init__(self, install: PgInstall, home: Path, port: int) -> None:
        self.install = install
        self.home = home
        self.port = port
        if install.chroot is not None:
            self._inside = Path("/var/lib/keel")  # the data folder as the server sees it
            self.data_dir = install.chroot / "var/lib/keel/data"
        else:
            self._inside = home
            self.data_dir = home / "data"
        self.log_file = self.data_dir.parent / "log" / "postgres.log"

    # -- queries -------------------------------------------------------------------------
    def status(self) -> ClusterStatus:
        running = False
        if (self.data_dir / "PG_VERSION").exists():
            running = self._pg_ctl("status", check=False).returncode == 0
        return ClusterStatus(running, self.data_dir, self.port, self.data_version())

    def data_version(self) -> str | None:
        marker = self.data_dir / "PG_VERSION"
        return marker.read_text().strip() if marker.exists() else None

    def binary_version(self) -> str:
        command = self.install.command("postgres", "--version")  # allowed as root, unlike starting it
        if self.install.chroot is not None:
            command = self._as_server_user(command)
        out = self._run(command, "postgres --version").stdout
        return out.strip().split()[-1].split(".")[0]

    # -- lifecycle ----------------------------------------------------------------------
    def start(self, say) -> None:
        self._check_data_folder()
        if self.status().running:
            self._write_settings()  # takes effect at next restart; keeps keel.conf current
            return
        if self.data_version() is None:
            say(f"creating a PostgreSQL cluster in {self.data_dir}")
            self._initdb()
        self._write_settings()
        self._check_port_free()
        say(f"starting PostgreSQL on 127.0.0.1:{self.port}")
        log = self._inside_path(self.log_file)
        result = self._pg_ctl("start", "-w", "-t", "60", "-l", str(log), check=False)
        if result.returncode != 0:
            raise LocalDbError(f"PostgreSQL did not start; see {self.log_file} ({_tail(self.log_file)})")

    def stop(self) -> bool:
        if not self.status().running:
            return False
        self._pg_ctl("stop", "-m", "fast", "-w")
        return True

    def ensure_database(self, name: str, *, fast_commit: bool = False) -> None:
        """Create `name` when missing; `fast_commit` trades durability for speed (throwaway test data)."""
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip()
        if not exists:
            self.psql(f'CREATE DATABASE "{name}"')
        if fast_commit:
            self.psql(f'ALTER DATABASE "{name}" SET synchronous_commit = off')

    def psql(self, sql: str, database: str = "postgres") -> str:
        command = self.install.command(
            "psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
            "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "-d", database, "-c", sql,
        )
        return self._run(self._as_server_user(command), "psql").stdout

    # -- internals -----------------------------------------------------------------------
    def _check_data_folder(self) -> None:
        found = self.data_version()
        if found is None:
            if self.data_dir.exists() and any(self.data_dir.iterdir()):
                raise LocalDbError(
                    f"{self.data_dir} is not empty but holds no PostgreSQL cluster; "
                    "move it away (it is left untouched) and run again"
                )
            return
        wanted = self.binary_version()
        if found != wanted:
            raise LocalDbError(
                f"{self.data_dir} holds a PostgreSQL {found} cluster but the installed server is {wanted}; "
                f"keep it with KEEL_PG_STACK matching it, or move the folder away (it is left untouched)"
            )

    def _check_port_free(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # As PostgreSQL itself binds: connections of a just-stopped server in TIME_WAIT must not count.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", self.port))
            except OSError:
                raise LocalDbError(
                    f"port {self.port} is already in use by another program; "
                    "set KEEL_DB_PORT to a free port or stop that program"
                ) from None

    def _initdb(self) -> None:
        partial = self.data_dir.with_name(self.data_dir.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)  # our own leftover from an interrupted initdb
        self._prepare_dir(partial)
        self._prepare_dir(self.log_file.parent)
        command = self.install.command(
            "initdb", "-D", str(self._inside_path(partial)), "-U", SUPERUSER,
            "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-instructions",
        )
        self._run(self._as_server_user(command), "initdb")
        with (partial / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude_if_exists = 'keel.conf'\n")
        partial.rename(self.data_dir)

    def _write_settings(self) -> None:
        libraries = "age,pg_textsearch" if self.install.has_textsearch else "age"
        lines = [
            "# Written by `keel db start`; edit KEEL_* settings instead.",
            "listen_addresses = '127.0.0.1'",
            f"port = {self.port}",
            "unix_socket_directories = ''",
            f"shared_preload_libraries = '{libraries}'",
            "max_connections = 200",
            "shared_buffers = 256MB",
            "maintenance_work_mem = 256MB",
        ]
        if self.install.chroot is not None:
            lines.append("dynamic_shared_memory_type = sysv")
        settings = self.data_dir / "keel.conf"
        settings.write_text("\n".join(lines) + "\n")
        self._chown(settings)

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = self.install.command("pg_ctl", *args, "-D", str(self._inside_path(self.data_dir)))
        return self._run(self._as_server_user(command), f"pg_ctl {args[0]}", check=check)

    def _as_server_user(self, command: list[str]) -> list[str]:
        if self.install.chroot is not None:
            return ["chroot", "--userspec=postgres:postgres", str(self.install.chroot), *command]
        if os.geteuid() == 0:
            _ensure_system_user(SERVER_USER)
            return ["runuser", "-u", SERVER_USER, "--", *command]
        return command

    def _inside_path(self, path: Path) -> Path:
        if self.install.chroot is None:
            return path
        return Path("/") / path.relative_to(self.install.chroot)

    def _prepare_dir(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o700)
        self._chown(path)
        if os.geteuid() == 0 and self.install.chroot is None:
            _grant_traverse(path.parent)

    def _chown(self, path: Path) -> None:
        if os.geteuid() != 0:
            return
        user = "postgres" if self.install.chroot is not None else SERVER_USER
        if self.install.chroot is not None:
            uid, gid = _chroot_ids(self.install.chroot, user)
        else:
            _ensure_system_user(user)
            entry = pwd.getpwnam(user)
            uid, gid = entry.pw_uid, entry.pw_gid
        os.chown(path, uid, gid)

    def _run(self, command: list[str], what: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(command, capture_output=True, text=True, cwd="/")
        if check and result.returncode != 0:
            message = (result.stderr or result.stdout).strip().splitlines()
            raise LocalDbError(f"{what} failed: {message[-1] if message else 'no output'}")
        return result


def _ensure_system_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True, capture_output=True,
        )


def _grant_traverse(folder: Path) -> None:
    """The server user must be able to reach the data folder: add search (x) rights where missing."""
    for ancestor in [folder, *folder.parents]:
        mode = ancestor.stat().st_mode
        if not mode & stat.S_IXOTH:
            ancestor.chmod(mode | stat.S_IXOTH)


def _chroot_ids(root: Path, user: str) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise LocalDbError(f"no user {user} inside {root}")


def _tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1] if lines else "empty log"


def wait_until_accepting(cluster: Cluster, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            cluster.psql("SELECT 1")
            return
        except LocalDbError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
