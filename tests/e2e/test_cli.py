"""The CLI as a new user runs it: serve with the demo, create accounts while it runs, migrate."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ordex.config import Settings
from tests.support.postgres import PostgresServer, free_port
from tests.support.serve import ORDEX, ordex_serve


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ORDEX, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    port = free_port()
    data = tmp_path / "data"
    with ordex_serve(data, port) as (_, keys):
        yield f"http://127.0.0.1:{port}", keys, data


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
    try:
        with ordex_serve(tmp_path / "ordex", port, "--venue", f"127.0.0.1:{venue.port}") \
                as (_, keys):
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
        venue.stop()


def start_serve(port: int, data: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([*ORDEX, "serve", "--port", str(port), "--data-dir", str(data)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_running(proc: subprocess.Popen[str]) -> list[str]:
    """The lines ``ordex serve`` printed up to its demo keys."""
    assert proc.stdout is not None
    lines: list[str] = []
    while sum("ordex_" in line for line in lines) < 4:
        line = proc.stdout.readline()
        assert line, f"ordex serve stopped: {lines}"
        lines.append(line)
    return lines


def one_line_error(done: subprocess.CompletedProcess[str], status: int, *words: str) -> None:
    assert done.returncode == status, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    last = done.stderr.strip().splitlines()[-1]
    assert "error:" in last and all(w in last for w in words), done.stderr
    if status == 1:  # one line (a line per problem, when the API names several)
        assert all(line.startswith("ordex: error: ")
                   for line in done.stderr.strip().splitlines()), done.stderr


def test_serve_trades_on_two_embedded_venues(tmp_path: Path) -> None:
    port = free_port()
    with ordex_serve(tmp_path / "data", port, "--venue", "ALT=embedded",
                     "--default-venue", "ALT") as (_, keys), \
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10,
                         headers={"Authorization": f"Bearer {keys['alice']}"}) as client:
        listed = client.get("/v1/venues").json()["venues"]
        assert [(v["name"], v["default"]) for v in listed] == [("ALT", True), ("SIM", False)]
        placed = []
        for venue in (None, "SIM"):
            body = {"symbol": "AAPL", "side": "buy", "quantity": 5, "type": "market"}
            r = client.post("/v1/orders", json=body if venue is None else {**body,
                                                                            "venue": venue})
            assert r.status_code == 201, r.text
            placed.append(r.json())
        assert [o["venue"] for o in placed] == ["ALT", "SIM"]
        for order in placed:
            for _ in range(100):
                back = client.get(f"/v1/orders/{order['id']}").json()
                if back["status"] == "filled":
                    break
                time.sleep(0.05)
            assert back["status"] == "filled"
            fills = client.get(f"/v1/orders/{order['id']}/fills").json()["fills"]
            assert {f["venue"] for f in fills} == {order["venue"]}
    assert (tmp_path / "data" / "exchange-ALT.db").exists()


def test_user_mistakes_get_one_line_and_an_exit_status_never_a_traceback(
        tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    cases: list[tuple[tuple[str, ...], int, tuple[str, ...]]] = [
        (("orders", "list", "--key", "k", "--url", closed), 1,
         ("cannot connect to ordex at", "ordex serve", "--url")),
        (("orders", "submit", "AAPL", "buy", "1", "--key", "k", "--url", "nonsense"), 2,
         ("--url", "is not the URL of an ordex service")),
        (("orders", "get", "x", "--url", closed), 2, ("API key is needed", "ORDEX_API_KEY")),
        (("orders", "submit", "AAPL", "buy", "ten", "--key", "k"), 2, ("is not a number",)),
        (("accounts", "create", "x", "--database-url", "nonsense"), 2,
         ("not a URL", "postgresql+asyncpg://")),
        (("accounts", "list", "--database-url", "postgresql://u@127.0.0.1/x"), 2,
         ("cannot use the database URL", "postgresql+asyncpg://")),
        (("accounts", "create", "x", "--database-url",
          f"postgresql+asyncpg://u:secret@127.0.0.1:{free_port()}/x"), 1,
         ("connection refused", "u:***@", "--database-url")),
        (("migrate", "--database-url", "postgresql+asyncpg://u@no-such-host.invalid/x"), 1,
         ("unknown host",)),
        (("accounts", "create", "x", "--data-dir", str(a_file)), 2, ("is a file",)),
        (("migrate", "--data-dir", str(a_file)), 2, ("is a file", "--data-dir")),
        (("serve", "--data-dir", str(a_file)), 2, ("is a file", "--data-dir")),
        (("serve", "--port", "99999", "--data-dir", str(tmp_path / "d")), 2, ("not a port",)),
        (("serve", "--data-dir", str(tmp_path / "d"), "--venue", "ALT=nowhere"), 2,
         ("settings", "must be HOST:PORT", "'nowhere'")),
        (("serve", "--data-dir", str(tmp_path / "d"), "--venue", "127.0.0.1:1", "--venue",
          "127.0.0.1:2"), 2, ("more than once", "NAME=HOST:PORT")),
        (("serve", "--data-dir", str(tmp_path / "d"), "--default-venue", "ALT"), 2,
         ("the default venue 'ALT' is not configured",)),
        (("serve", "--data-dir", str(tmp_path / "d"), "--database-url",
          f"postgresql+asyncpg://u@127.0.0.1:{free_port()}/x"), 1, ("connection refused",)),
    ]
    for args, status, words in cases:
        done = run_cli(*args, env={"ORDEX_API_KEY": ""})
        one_line_error(done, status, *words)
        assert "secret" not in done.stderr
    bad_env = run_cli("migrate", env={"ORDEX_PORT": "eighty"})
    one_line_error(bad_env, 2, "ORDEX_PORT")


def test_accounts_create_says_when_there_is_no_store_instead_of_making_one(
        tmp_path: Path) -> None:
    empty = tmp_path / "elsewhere"
    done = run_cli("accounts", "create", "erin", "--data-dir", str(empty))
    one_line_error(done, 1, "no ordex store", "ordex migrate", "--data-dir")
    assert "ordex_" not in done.stdout and not (empty / "ordex.db").exists()
    for command in (("accounts", "list"), ("accounts", "revoke", "erin")):
        one_line_error(run_cli(*command, "--data-dir", str(empty)), 1, "ordex migrate")


def test_accounts_create_on_a_database_without_the_schema(postgres: PostgresServer) -> None:
    import asyncio

    import asyncpg

    async def create() -> None:
        conn = await asyncpg.connect(postgres.dsn())
        await conn.execute('CREATE DATABASE "cli_empty"')
        await conn.close()

    asyncio.run(create())
    env = {"ORDEX_DATABASE_URL": postgres.url("cli_empty")}
    done = run_cli("accounts", "create", "pat", env=env)
    one_line_error(done, 1, "not an ordex store", "ordex migrate", "--database-url")
    missing = run_cli("accounts", "list", env={
        "ORDEX_DATABASE_URL": postgres.url("no_such_database")})
    one_line_error(missing, 1, "does not exist", "ordex migrate")


def test_serve_checks_its_port_before_it_says_running(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([*ORDEX, "serve", "--port", str(port), "--data-dir",
                               str(tmp_path / "data")], capture_output=True, text=True,
                              timeout=60)
    assert "running" not in done.stdout
    one_line_error(done, 1, f"port {port}", "already in use", "--port")


def test_one_serve_per_data_dir_and_a_restart_after_kill_9_works_at_once(
        tmp_path: Path) -> None:
    import signal

    data = tmp_path / "data"
    first = start_serve(free_port(), data)
    try:
        wait_running(first)
        second = subprocess.run([*ORDEX, "serve", "--port", str(free_port()), "--data-dir",
                                 str(data)], capture_output=True, text=True, timeout=60)
        assert "running" not in second.stdout
        one_line_error(second, 1, "another ordex serve", f"pid {first.pid}", "--data-dir")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        port = free_port()
        again = start_serve(port, data)
        try:
            lines = wait_running(again)
            assert any(f"running at http://127.0.0.1:{port}" in line for line in lines)
        finally:
            again.terminate()
            again.wait(timeout=20)
    finally:
        first.kill()
        first.wait(timeout=10)


def test_the_cli_trades_and_manages_keys(server: tuple[str, dict[str, str], Path]) -> None:
    import json

    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    url, keys, data = server
    trader = ["--url", url, "--key", keys["alice"]]
    store = ["--data-dir", str(data)]
    done = run_cli("orders", "submit", "AAPL", "buy", "5", "--type", "limit", "--limit-price",
                   "180.00", "--tif", "gtc", "--client-order-id", "cli-1", *trader)
    assert done.returncode == 0, done.stderr
    fields = dict(line.split(None, 1) for line in done.stdout.strip().splitlines())
    assert (fields["status"], fields["symbol"], fields["quantity"], fields["limit_price"],
            fields["time_in_force"], fields["client_order_id"]) == (
        "accepted", "AAPL", "5", "180", "gtc", "cli-1")
    order_id = fields["id"]
    got = run_cli("orders", "get", order_id, "--json", *trader)
    assert got.returncode == 0 and json.loads(got.stdout)["id"] == order_id
    listed = run_cli("orders", "list", "--symbol", "AAPL", "--limit", "1", *trader)
    assert listed.returncode == 0 and listed.stdout.startswith(order_id)
    assert f"--cursor {order_id}" in listed.stderr
    cancelled = run_cli("orders", "cancel", order_id, *trader)
    assert cancelled.returncode == 0 and " cancelled " in cancelled.stdout

    refused = run_cli("orders", "submit", "AAPL", "buy", "100000", "--max-slippage", "0.5",
                      "--timeout", "30", *trader)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("ordex: error: refused (HTTP 422) [insufficient_funds] "
                                     "quantity: Insufficient funds for $")
    assert " — Reduce the quantity to " in refused.stderr
    assert "Traceback" not in refused.stderr

    accounts = run_cli("accounts", "list", *store)
    assert accounts.returncode == 0
    assert [line.split()[0] for line in accounts.stdout.splitlines()] == [
        "admin", "alice", "bob", "carol"]
    assert all(line.endswith("key active") for line in accounts.stdout.splitlines())

    rotated = run_cli("accounts", "rotate-key", "alice", *store)
    assert rotated.returncode == 0, rotated.stderr
    new_key = rotated.stdout.strip().splitlines()[-1]
    assert new_key.startswith("ordex_") and new_key != keys["alice"]
    time.sleep(1.0)
    old = run_cli("orders", "list", *trader)
    one_line_error(old, 1, "The API key is not valid", "HTTP 401")
    fresh = ["--url", url, "--key", new_key]
    assert run_cli("orders", "get", order_id, *fresh).returncode == 0

    with connect(url.replace("http://", "ws://") + "/v1/stream") as ws:
        ws.send(json.dumps({"api_key": new_key}))
        assert json.loads(ws.recv(timeout=5))["type"] == "subscribed"
        revoked = run_cli("accounts", "revoke", "alice", *store)
        assert revoked.returncode == 0, revoked.stderr
        started = time.monotonic()
        said: list[dict[str, str]] = []
        with pytest.raises(ConnectionClosed):
            while time.monotonic() - started < 5:
                said.append(json.loads(ws.recv(timeout=5)))
        assert time.monotonic() - started < 1.0  # from the CLI's exit to the socket's close
        assert said[-1]["type"] == "error" and said[-1]["code"] == "unauthorized"
        assert ws.close_code == 4401 and "revoked" in (ws.close_reason or "")
    one_line_error(run_cli("orders", "list", *fresh), 1, "The API key is not valid")
    listing = run_cli("accounts", "list", *store).stdout
    assert "key revoked" in next(line for line in listing.splitlines() if "alice" in line)
    one_line_error(run_cli("accounts", "revoke", "nobody", *store), 1, "No account named")


def test_every_option_has_help_and_the_version_prints() -> None:
    import argparse

    from ordex import __version__
    from ordex.cli import parser

    def commands(p: argparse.ArgumentParser, name: str) -> Iterator[tuple[str, argparse.Action]]:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    yield from commands(sub, f"{name} {sub_name}")
            else:
                yield name, action

    missing = [f"{name} {action.dest}" for name, action in commands(parser(), "ordex")
               if not action.help]
    assert missing == []
    done = run_cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"ordex {__version__}"
    wanted = {"orders": {"submit", "get", "cancel", "list", "retry", "acknowledge"},
              "accounts": {"create", "list", "revoke", "rotate-key"}}
    for group, subs in wanted.items():
        helped = run_cli(group, "--help")
        assert helped.returncode == 0 and all(s in helped.stdout for s in subs)
