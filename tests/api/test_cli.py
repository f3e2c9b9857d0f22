"""The `keel` command line as a person uses it: `keel up` serves, and mistakes get one clear line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import httpx
import pytest

from src.config import REPO_ROOT
from tests.conftest import run_keel, wait_for

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as children:
            found |= {int(child) for child in children.read().split()}
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGKILL])
def test_keel_up_serves_health_and_graphiql_and_leaves_no_worker_behind(test_env, stop_signal):
    port = _free_port()
    env = {**test_env, "KEEL_PORT": str(port)}
    process = subprocess.Popen([sys.executable, "-m", "src.cli", "up"], cwd=REPO_ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    try:
        wait_for(lambda: lines.append(process.stdout.readline()) or "ready in" in lines[-1], timeout=120, interval=0)
        assert f"open http://127.0.0.1:{port}/  (the console" in lines[-1] and f"{port}/graphql" in lines[-1]
        assert "Keel console" in httpx.get(f"http://127.0.0.1:{port}/", timeout=10).text
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        page = httpx.get(f"http://127.0.0.1:{port}/graphql", headers={"accept": "text/html"}, timeout=10)
        assert page.status_code == 200 and "graphiql" in page.text.lower()
        workers = _children(process.pid)
        assert workers, "keel up started no worker"
    finally:
        os.killpg(process.pid, stop_signal)  # what a Ctrl-C (or an OOM kill) does to the whole group
        process.wait(timeout=60)
    wait_for(lambda: not any(_alive(pid) for pid in workers), timeout=60)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("KEEL_DB_PORT", "not-a-port"), ("KEEL_DATABASE_URL", "mysql://nope"), ("KEEL_WORKER_THREADS", "0")],
)
def test_an_invalid_setting_is_one_line_without_a_traceback(test_env, variable, value):
    result = run_keel("db", "status", env={**test_env, variable: value})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and variable in errors[0]


def test_serve_on_a_taken_port_says_which_setting_to_change(test_env):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = run_keel("serve", env={**test_env, "KEEL_PORT": str(port)})
    assert result.returncode == 1
    assert "KEEL_PORT" in result.stderr and "Traceback" not in result.stderr


def test_db_status_reports_the_running_cluster(test_env, settings):
    if not settings.embedded_database:
        pytest.skip("no local cluster with KEEL_DATABASE_URL")
    result = run_keel("db", "status", env=test_env)
    assert result.returncode == 0, result.stderr
    assert "running:  yes" in result.stdout and f"127.0.0.1:{settings.db_port}" in result.stdout


def test_the_console_makes_the_first_admin(test_env, settings):
    import asyncio
    import uuid

    email = f"first-admin-{uuid.uuid4().hex[:6]}@example.com"
    result = run_keel("users", "set-role", email, "admin", env=test_env)
    assert result.returncode == 1 and "no such user" in result.stderr
    from src.container import build_container, shutdown
    from src.ports.identity import ClientInfo

    async def sign_up() -> None:
        services = build_container(settings)
        await services.sign_up().execute(email, "a long enough password", "", ClientInfo())
        await shutdown(services)

    asyncio.run(sign_up())
    result = run_keel("users", "set-role", email, "admin", env=test_env)
    assert result.returncode == 0 and f"{email} is now admin" in result.stderr
    assert run_keel("users", "set-role", email, "emperor", env=test_env).returncode == 1
