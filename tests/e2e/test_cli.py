"""The CLI as a new user runs it: serve with the demo, create accounts while it runs, migrate."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ordex.config import Settings
from tests.support.postgres import PostgresServer, free_port

ORDEX = [sys.executable, "-m", "ordex.cli"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ORDEX, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    port = free_port()
    data = tmp_path / "data"
    proc = subprocess.Popen([*ORDEX, "serve", "--port", str(port), "--data-dir", str(data)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    keys: dict[str, str] = {}
    assert proc.stdout is not None
    try:
        while len(keys) < 4:
            line = proc.stdout.readline()
            if not line:
                break
            match = re.match(r"^\s+(\w+)\s+(ordex_\S+)$", line)
            if match:
                keys[match.group(1)] = match.group(2)
        assert set(keys) == {"alice", "bob", "carol", "admin"}, "demo keys not printed"
        yield f"http://127.0.0.1:{port}", keys, data
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_prints_demo_keys_and_takes_an_order(
        server: tuple[str, dict[str, str], Path]) -> None:
    url, keys, _ = server
    headers = {"Authorization": f"Bearer {keys['alice']}"}
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/healthz").json()["status"] == "ok"
        r = client.post("/v1/orders", headers=headers, json={
            "symbol": "AAPL", "side": "buy", "quantity": 5, "type": "market"})
        assert r.status_code == 201, r.text
        order = r.json()
        assert order["status"] == "accepted"
        for _ in range(100):
            back = client.get(f"/v1/orders/{order['id']}", headers=headers).json()
            if back["status"] == "filled":
                break
            time.sleep(0.05)
        assert back["id"] == order["id"] and back["status"] == "filled"
        assert client.get("/openapi.json").json()["info"]["title"] == "ordex"
        assert client.get("/docs").status_code == 200


def test_accounts_create_works_while_the_server_runs(
        server: tuple[str, dict[str, str], Path]) -> None:
    url, _, data = server
    done = run_cli("accounts", "create", "erin", "--role", "trader", "--cash", "2500",
                   "--data-dir", str(data))
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().splitlines()[-1]
    assert key.startswith("ordex_")
    with httpx.Client(base_url=url, timeout=10) as client:
        me = client.get("/v1/account", headers={"Authorization": f"Bearer {key}"}).json()
    assert (me["name"], me["role"], me["cash"]) == ("erin", "trader", "2500")
    again = run_cli("accounts", "create", "erin", "--data-dir", str(data))
    assert again.returncode == 1 and "already exists" in again.stderr


def printed_keys(data: Path) -> list[str]:
    proc = subprocess.Popen([*ORDEX, "serve", "--port", str(free_port()), "--data-dir",
                             str(data)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    assert proc.stdout is not None
    keys: list[str] = []
    try:
        while len(keys) < 4:
            line = proc.stdout.readline()
            if not line:
                break
            if "ordex_" in line:
                keys.append(line.split()[-1])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return keys


def test_restart_keeps_the_demo_keys(tmp_path: Path) -> None:
    first = printed_keys(tmp_path / "data")
    assert len(first) == 4
    assert printed_keys(tmp_path / "data") == first


def test_migrate_and_accounts_against_postgres(postgres: PostgresServer) -> None:
    import asyncio

    import asyncpg

    async def create() -> None:
        conn = await asyncpg.connect(postgres.dsn())
        await conn.execute('CREATE DATABASE "cli_test"')
        await conn.close()

    asyncio.run(create())
    env = {"ORDEX_DATABASE_URL": postgres.url("cli_test")}
    migrated = run_cli("migrate", env=env)
    assert migrated.returncode == 0 and "up to date" in migrated.stdout
    made = run_cli("accounts", "create", "pat", "--role", "compliance", env=env)
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip().splitlines()[-1].startswith("ordex_")


def test_settings_read_the_specs_own_variable_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDER_RETRY_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("ORDER_TIMEOUT_SECONDS", "30")
    monkeypatch.setenv("EXCHANGE_API_KEY", "staging-key")
    monkeypatch.setenv("ORDER_EXECUTION_V2_ENABLED", "false")
    monkeypatch.setenv("ORDEX_RATE_LIMIT_PER_MINUTE", "50")
    s = Settings()
    assert (s.order_retry_max_attempts, s.order_timeout_seconds, s.exchange_api_key,
            s.order_execution_v2_enabled, s.rate_limit_per_minute) == (2, 30, "staging-key",
                                                                       False, 50)
    monkeypatch.delenv("ORDER_RETRY_MAX_ATTEMPTS")
    monkeypatch.setenv("ORDEX_ORDER_RETRY_MAX_ATTEMPTS", "5")
    assert Settings().order_retry_max_attempts == 5


def test_spec_defaults() -> None:
    s = Settings(_env_file=None)
    assert s.order_retry_max_attempts == 3 and s.order_timeout_seconds == 120


def test_serve_trades_on_an_ordex_venue_over_fix(tmp_path: Path) -> None:
    from tests.support.venue_process import VenueProcess

    venue = VenueProcess(tmp_path / "venue", tick_seconds=0)
    venue.start()
    port = free_port()
    proc = subprocess.Popen([*ORDEX, "serve", "--port", str(port), "--data-dir",
                             str(tmp_path / "ordex"), "--venue", f"127.0.0.1:{venue.port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    try:
        keys: dict[str, str] = {}
        while len(keys) < 4:
            line = proc.stdout.readline()
            assert line, "ordex serve stopped"
            match = re.match(r"^\s+(\w+)\s+(ordex_\S+)$", line)
            if match:
                keys[match.group(1)] = match.group(2)
        headers = {"Authorization": f"Bearer {keys['alice']}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            order = client.post("/v1/orders", headers=headers, json={
                "symbol": "KO", "side": "buy", "quantity": "2", "type": "market"}).json()
            for _ in range(200):
                back = client.get(f"/v1/orders/{order['id']}", headers=headers).json()
                if back["status"] == "filled":
                    break
                time.sleep(0.05)
            assert back["status"] == "filled"
            fills = client.get(f"/v1/orders/{order['id']}/fills", headers=headers).json()
        assert [f["venue"] for f in fills["fills"]] == ["SIM"]
        listed = httpx.get(f"{venue.admin_url}/orders", timeout=10).json()["orders"]
        assert [o["client_order_id"] for o in listed] == [order["id"]]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        venue.stop()
