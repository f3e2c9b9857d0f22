"""A bounded load run: `keel serve` and one worker on a scratch database, the fake OpenAI (streaming 20 tokens
at 50 tokens/s), and Locust headless with the mixed traffic of locustfile.py. Prints requests/s, p50/p95/p99
per operation, errors by kind, and the memory of Keel's processes at the start and the end.

    python -m benchmarks.load        LOAD_USERS=30 LOAD_SECONDS=180 LOAD_SPAWN_RATE=5

All clients come from 127.0.0.1, so the per-address limits (anonymous rate, sign-ups per address) are off;
per-user and per-key limits stay at their defaults. Passwords are hashed at production strength."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from src.cli.migrate import upgrade
from src.config import REPO_ROOT, load_settings
from src.localdb.stack import local_cluster
from tests.conftest import keel_serve, start_worker, stop_worker
from tests.fakes.openai_api import FakeOpenAI

USERS = int(os.environ.get("LOAD_USERS", "30"))
SECONDS = int(os.environ.get("LOAD_SECONDS", "180"))
SPAWN_RATE = float(os.environ.get("LOAD_SPAWN_RATE", "5"))
WEBHOOK_SECRET = "whsec_load"


def scratch_database():
    settings = load_settings()
    name = f"{settings.db_name}_load"
    cluster = local_cluster(settings)
    cluster.start(print)
    cluster.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    cluster.ensure_database(name)
    scratch = settings.model_copy(update={"db_name": name})
    upgrade(scratch)
    return scratch


def megabytes(process: subprocess.Popen) -> float:
    """Resident memory of a process and its children (the worker forks its own)."""
    try:
        root = psutil.Process(process.pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 1e6
    except psutil.NoSuchProcess:
        return float("nan")


def table(prefix: Path) -> str:
    rows = list(csv.DictReader((prefix.parent / f"{prefix.name}_stats.csv").open()))
    lines = [f"{'operation':<22}{'requests':>9}{'failed':>8}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"]
    for row in rows:
        lines.append(f"{row['Name']:<22}{row['Request Count']:>9}{row['Failure Count']:>8}"
                     f"{float(row['Requests/s']):>8.1f}{row['50%']:>9}{row['95%']:>9}{row['99%']:>9}")
    failures = list(csv.DictReader((prefix.parent / f"{prefix.name}_failures.csv").open()))
    lines.append("errors by kind: " + ("none" if not failures else "; ".join(
        f"{f['Name']}: {f['Error'][:120]} x{f['Occurrences']}" for f in failures)))
    return "\n".join(lines)


def main() -> int:
    scratch = scratch_database()
    fake = FakeOpenAI()
    fake.chat.token_delay = 0.02
    env = {**os.environ, "KEEL_DB_NAME": scratch.db_name, "KEEL_OPENAI_API_KEY": fake.api_key,
           "KEEL_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, "KEEL_RATE_ANONYMOUS_PER_MINUTE": "0",
           "KEEL_SIGN_UPS_PER_ADDRESS_HOURLY": "0", "KEEL_WORKER_METRICS_PORT": "0", "KEEL_GRAPH_BUILD": "false"}
    out = Path(tempfile.mkdtemp(prefix="keel-load-"))
    with fake.serve() as served:
        env["KEEL_OPENAI_BASE_URL"] = served.url + "/v1"
        worker = start_worker(env, output=(out / "worker.log").open("w"))
        try:
            with keel_serve(env, output=(out / "serve.log").open("w")) as (base, api):
                memory = {"serve": [megabytes(api)], "worker": [megabytes(worker)]}
                done = threading.Event()

                def sample() -> None:
                    while not done.wait(10):
                        memory["serve"].append(megabytes(api))
                        memory["worker"].append(megabytes(worker))

                threading.Thread(target=sample, daemon=True).start()
                load = psutil.getloadavg()
                started = time.monotonic()
                locust = subprocess.run(
                    [sys.executable, "-m", "locust", "-f", str(Path(__file__).with_name("locustfile.py")),
                     "--headless", "-u", str(USERS), "-r", str(SPAWN_RATE), "-t", f"{SECONDS}s", "--host", base,
                     "--csv", str(out / "load"), "--only-summary", "--stop-timeout", "30"],
                    cwd=REPO_ROOT, env={**env, "LOAD_WEBHOOK_SECRET": WEBHOOK_SECRET},
                    capture_output=True, text=True, timeout=SECONDS + 300)
                done.set()
                took = time.monotonic() - started
                memory["serve"].append(megabytes(api))
                memory["worker"].append(megabytes(worker))
        finally:
            stop_worker(worker)
    print(f"\n{USERS} users for {took:.0f} s against {base} (load average before: "
          f"{' '.join(f'{x:.1f}' for x in load)}; machine: {os.cpu_count()} cores)")
    print(table(out / "load"))
    for name, samples in memory.items():
        print(f"memory of {name}: {samples[0]:.0f} MB at the start, {max(samples):.0f} MB at most, "
              f"{samples[-1]:.0f} MB at the end")
    print(f"logs and Locust's CSVs: {out}")
    if locust.returncode not in (0, 1):  # 1 = some requests failed (shown above)
        print(locust.stderr[-3000:])
    return locust.returncode


if __name__ == "__main__":
    sys.exit(main())
