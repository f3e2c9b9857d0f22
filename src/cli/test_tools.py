"""Debian tools only some tests need: installed by `keel test` when it can (root), else named once."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable

# command -> Debian package: docker-compose (v1) validates docker-compose.yml without an engine;
# redis-server is the second broker the job round-trip runs on; node and npm run the AI SDK's own client;
# chromium is the browser the console's end-to-end tests drive (Playwright never downloads one).
TEST_TOOLS = {"docker-compose": "docker-compose", "redis-server": "redis-server", "node": "nodejs", "npm": "npm",
              "chromium": "chromium"}


def ensure_test_tools(say: Callable[[str], None]) -> None:
    missing = [package for command, package in TEST_TOOLS.items() if shutil.which(command) is None]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        say(f"tests that need {', '.join(missing)} will be skipped (sudo apt-get install {' '.join(missing)})")
        return
    say(f"installing {', '.join(missing)} from Debian (for the tests)")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], env=env, **quiet)
    if subprocess.run(["apt-get", "install", "-y", "-q", *missing], env=env, **quiet).returncode != 0:
        say(f"could not install {', '.join(missing)}; the tests that need them will be skipped")
