"""The service under measurement, for every benchmark: ``ordex serve`` as a child process on a
throwaway store (SQLite in a temporary directory, or a new database on a throwaway PostgreSQL
server), its admin key, and the event loop the load runs on.

Everything binds to 127.0.0.1; processes, servers and directories are put on an
``ExitStack`` and go when it closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
from tests.support.postgres import PostgresServer, free_port

try:
    import uvloop
except ImportError:  # pragma: no cover - uvicorn[standard] brings it
    uvloop = None

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
LOOP = "uvloop" if uvloop is not None else "asyncio"

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when it is installed (as ``uvicorn[standard]`` brings it), like the service."""
    if uvloop is None:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class ServiceProcess:
    """``ordex serve`` as a child process, stopped by its own pid."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def start(self) -> None:
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=service_env(),
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

    def wait_ready(self, base_url: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=base_url, trust_env=False, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"the service exited with {self.proc.returncode}:\n"
                                       + self.log_tail())
                try:
                    if client.get("/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        raise RuntimeError("the service did not answer /healthz in time:\n" + self.log_tail())

    def cpu_seconds(self) -> float | None:
        """User plus system CPU time of the service (all its threads), from /proc."""
        if self.proc is None:
            return None
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 30) -> str:
        return log_tail(self.log_path, lines)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        if self._log is not None:
            self._log.close()
            self._log = None


P = TypeVar("P", bound=ServiceProcess)


def service_env() -> dict[str, str]:
    """The environment without ORDEX_* settings, so that only the flags choose the store."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ORDEX_")}


def ordex_command() -> str:
    local = Path(sys.executable).parent / "ordex"
    if local.exists():
        return str(local)
    found = shutil.which("ordex")
    if found is None:
        raise SystemExit("the 'ordex' command was not found; install the project into .venv")
    return found


def cli_create_account(name: str, role: str, cash: str, store_args: list[str]) -> str:
    """``ordex accounts create``; the API key is the last line it prints."""
    done = subprocess.run(
        [ordex_command(), "accounts", "create", name, "--role", role, "--cash", cash,
         *store_args],
        cwd=ROOT, env=service_env(), capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ordex accounts create failed: {done.stderr or done.stdout}")
    return done.stdout.strip().splitlines()[-1]


async def create_database(dsn: str, name: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def admin_key(backend: str, store_args: list[str], data_dir: Path) -> str:
    """An admin key: made with ``ordex accounts create`` on PostgreSQL (no demo there), the
    demo's on SQLite."""
    if backend == "postgres":
        return cli_create_account("bench-admin", "admin", "0", store_args)
    return str(json.loads((data_dir / "demo-keys.json").read_text())["admin"])


def new_tmp(stack: contextlib.ExitStack, prefix: str) -> Path:
    """A new temporary directory named from ``prefix``, removed when ``stack`` closes."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    stack.callback(shutil.rmtree, tmp, ignore_errors=True)
    return tmp


def start_postgres(stack: contextlib.ExitStack) -> PostgresServer:
    """A throwaway PostgreSQL server, stopped when ``stack`` closes."""
    pg = PostgresServer()
    stack.callback(pg.stop)
    pg.start()
    return pg


@dataclass(frozen=True)
class Store:
    """Where a service keeps its data: ``cli`` the flags that point ``ordex accounts create``
    at it, ``serve`` those of ``ordex serve``."""

    backend: str
    data_dir: Path
    cli: list[str]
    serve: list[str]

    def admin_key(self) -> str:
        return admin_key(self.backend, self.cli, self.data_dir)


def new_store(backend: str, data_dir: Path, pg: PostgresServer | None = None,
              database: str = "ordex_bench", *, own_data_dir: bool = True) -> Store:
    """SQLite in ``data_dir``, the demo seeded; or the new database ``database`` on ``pg``,
    without the demo. On PostgreSQL the service keeps its other files (lock, logs, FIX session
    store) in ``data_dir`` too, or with ``own_data_dir`` False in its default ``data/``."""
    if backend != "postgres":
        flags = ["--data-dir", str(data_dir)]
        return Store(backend, data_dir, flags, flags)
    if pg is None:
        raise ValueError("a PostgreSQL store needs a PostgreSQL server")
    run_async(create_database(pg.dsn(), database))
    cli = ["--database-url", pg.url(database)]
    serve = [*cli, "--no-demo", *(["--data-dir", str(data_dir)] if own_data_dir else [])]
    return Store(backend, data_dir, cli, serve)


def start_serve(stack: contextlib.ExitStack, serve_args: Sequence[str], log_path: Path,
                process: Callable[[list[str], Path], P]) -> tuple[P, str]:
    """``ordex serve`` with ``serve_args`` on a free port of 127.0.0.1, run as ``process`` (a
    ``ServiceProcess`` class, or a partial of one) logging to ``log_path``, ready on /healthz,
    stopped when ``stack`` closes. Returns the process and its URL."""
    port = free_port()
    server = process([ordex_command(), "serve", "--host", HOST, "--port", str(port),
                      *serve_args], log_path)
    stack.callback(server.stop)
    server.start()
    base_url = f"http://{HOST}:{port}"
    server.wait_ready(base_url)
    return server, base_url


def start_service(backend: str, stack: contextlib.ExitStack, extra_args: Sequence[str] = (),
                  *, label: str = "",
                  process: Callable[[list[str], Path], ServiceProcess] = ServiceProcess,
                  ) -> tuple[str, str, ServiceProcess]:
    """``ordex serve`` on ``backend`` (a throwaway PostgreSQL server, or SQLite in a temporary
    data dir with the demo), stopped when ``stack`` closes. Returns its URL, an admin key and the
    process."""
    tmp = new_tmp(stack, f"ordex-bench-{label}-{backend}-" if label else f"ordex-bench-{backend}-")
    pg = start_postgres(stack) if backend == "postgres" else None
    store = new_store(backend, tmp / "data", pg, own_data_dir=False)
    server, base_url = start_serve(stack, [*store.serve, *extra_args], tmp / "server.log",
                                   process)
    return base_url, store.admin_key(), server
