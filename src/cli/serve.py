"""Running the API (uvicorn) and the workers (Dramatiq's own supervisor) as processes."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable

import uvicorn

from src.config import Settings
from src.localdb.errors import LocalDbError

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def check_port_free(host: str, port: int, variable: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise LocalDbError(f"{host}:{port} is already in use; set {variable} to a free port") from None


def worker_command(settings: Settings) -> list[str]:
    return [
        sys.executable, "-m", "dramatiq", "src.worker_main",
        "--processes", str(settings.worker_processes), "--threads", str(settings.worker_threads),
    ]


def start_worker_process(settings: Settings) -> subprocess.Popen:
    """Workers in a session of their own, so a Ctrl-C reaches them once, through us; and they get
    SIGTERM (Dramatiq's graceful stop) if we die without cleaning up."""
    return subprocess.Popen(worker_command(settings), env=os.environ.copy(), start_new_session=True,
                            preexec_fn=_terminate_with_parent)


def stop_worker_process(worker: subprocess.Popen, timeout: float = 30) -> None:
    worker.terminate()
    try:
        worker.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


def _terminate_with_parent() -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class _AnnouncingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_ready()


def run_api(settings: Settings, on_ready: Callable[[], None] = lambda: None) -> None:
    check_port_free(settings.host, settings.port, "KEEL_PORT")
    config = uvicorn.Config(
        "src.main:create_app", factory=True, host=settings.host, port=settings.port,
        log_level=settings.log_level, ws="websockets-sansio", proxy_headers=True,
        # token deltas are ~100-byte frames: compressing them costs CPU and a zlib state per connection
        ws_per_message_deflate=False,
    )
    _AnnouncingServer(config, on_ready).run()
