"""``ordex venue`` as a subprocess on free loopback ports, with its admin API at hand."""

from __future__ import annotations

import ctypes
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.postgres import free_port


def _die_with_parent() -> None:
    """In the child: SIGTERM when the test process dies, even if it crashes (Linux)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class VenueProcess:
    """Start with ``start()`` (waits for the ready line), always ``stop()``. The same data dir
    and ports can be started again (a venue restart)."""

    def __init__(self, data_dir: Path, *, port: int | None = None, admin_port: int | None = None,
                 name: str = "SIM", seed: int = 7, tick_seconds: float = 0,
                 heartbeat_seconds: int = 1, client_comp_id: str = "ORDEX",
                 log_messages: bool = True, password: str | None = None,
                 host: str | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.admin_port = admin_port or free_port()
        self.name = name
        self.seed = seed
        self.tick_seconds = tick_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.client_comp_id = client_comp_id
        self.log_messages = log_messages
        self.password = password
        self.host = host
        self.proc: subprocess.Popen[str] | None = None
        self.ready_line = ""

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "venue.log"

    def start(self, timeout: float = 20.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "ordex.cli", "venue", "--port", str(self.port),
                "--admin-port", str(self.admin_port), "--data-dir", str(self.data_dir),
                "--name", self.name, "--seed", str(self.seed),
                "--tick-seconds", str(self.tick_seconds),
                "--heartbeat", str(self.heartbeat_seconds),
                "--client-comp-id", self.client_comp_id]
        if self.log_messages:
            args.append("--log-messages")
        if self.host:
            args += ["--host", self.host]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("ORDEX_VENUE_PASSWORD", None)
        if self.password:
            env["ORDEX_VENUE_PASSWORD"] = self.password
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True,
                                         env=env,
                                         preexec_fn=_die_with_parent)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if ready:
                line = self.proc.stdout.readline()
                if "listening" in line:
                    self.ready_line = line.strip()
                    return
                if not line:
                    break
        self.stop()
        raise RuntimeError(f"the venue did not start: {self.log_path.read_text()[-2000:]}")

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        if proc.stdout is not None:
            proc.stdout.close()

    async def admin(self, method: str, path: str, body: dict[str, Any] | None = None,
                    expect: int = 200) -> Any:
        async with httpx.AsyncClient(base_url=self.admin_url, timeout=10) as client:
            response = await client.request(
                method, path, json=body if body is not None or method != "POST" else {})
        assert response.status_code == expect, response.text
        return response.json()

    def seqnums_file(self) -> Path:
        return self.data_dir / "fix-store" / f"FIX.4.4-{self.name}-{self.client_comp_id}.seqnums"
