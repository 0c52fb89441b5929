"""``ordex serve`` with the FIX session flags, against ``ordex venue`` with its own CompIDs and a
logon password: the spec's EXCHANGE_API_KEY is the Password (554); a wrong one is refused, and
``/readyz`` says why."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from ordex.config import Settings
from tests.support.postgres import free_port
from tests.support.serve import ordex_serve
from tests.support.venue_process import VenueProcess


@contextmanager
def serve(data_dir: Path, venue_port: int, api_key: str) -> Iterator[tuple[str, str]]:
    """``ordex serve`` with every session flag; yields its URL and alice's key."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDEX_VENUE")}
    env["EXCHANGE_API_KEY"] = api_key
    with ordex_serve(data_dir, port, "--venue", f"127.0.0.1:{venue_port}",
                     "--venue-sender-comp-id", "DESK7", "--venue-target-comp-id", "XCHG",
                     "--venue-heartbeat", "2", "--venue-reset-seq", "--venue-username",
                     "desk7-user", env=env) as (_, keys):
        yield f"http://127.0.0.1:{port}", keys["alice"]


def readyz(url: str, status: int, within: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        answer = httpx.get(f"{url}/readyz", timeout=10)
        if answer.status_code == status or time.monotonic() > deadline:
            assert answer.status_code == status, answer.text
            return dict(answer.json())
        time.sleep(0.2)


def test_serve_logs_on_with_its_comp_ids_username_and_password(tmp_path: Path) -> None:
    venue = VenueProcess(tmp_path / "venue", name="XCHG", client_comp_id="DESK7",
                         password="the-key")
    venue.start()
    try:
        with serve(tmp_path / "ordex", venue.port, "the-key") as (url, key):
            ready = readyz(url, 200)
            assert ready["venues"] == {"SIM": "connected"}  # ordex names it; XCHG is its CompID
            headers = {"Authorization": f"Bearer {key}"}
            order = httpx.post(f"{url}/v1/orders", headers=headers, timeout=10, json={
                "symbol": "KO", "side": "buy", "quantity": "2", "type": "market"}).json()
            for _ in range(200):
                back = httpx.get(f"{url}/v1/orders/{order['id']}", headers=headers,
                                 timeout=10).json()
                if back["status"] == "filled":
                    break
                time.sleep(0.05)
            assert back["status"] == "filled"
            venues = httpx.get(f"{url}/v1/venues", headers=headers, timeout=10).json()
            assert venues["venues"][0]["capabilities"]["mass_status"]["supported"] is True
        logons = [line for f in (venue.data_dir / "fix-log").glob("*messages*")
                  for line in f.read_text(errors="replace").splitlines()
                  if "\x0135=A\x01" in line and "\x0149=DESK7\x01" in line]
        assert logons and all("\x01553=desk7-user\x01" in line and "\x01554=the-key\x01" in line
                              and "\x01108=2\x01" in line for line in logons)
        assert "\x01141=Y\x01" in logons[0]
    finally:
        venue.stop()


def test_serve_with_a_wrong_exchange_api_key_says_why_in_readyz(tmp_path: Path) -> None:
    venue = VenueProcess(tmp_path / "venue", name="XCHG", client_comp_id="DESK7",
                         password="the-key")
    venue.start()
    try:
        with serve(tmp_path / "ordex", venue.port, "not-the-key") as (url, _):
            body = readyz(url, 503)
            for _ in range(100):
                session = body["venue_details"]["SIM"]["session"]
                if session["problem"]:
                    break
                time.sleep(0.2)
                body = readyz(url, 503)
            assert session["state"] == "connecting"
            assert "wrong Password (554)" in session["problem"]
            assert "EXCHANGE_API_KEY" in session["hint"]
    finally:
        venue.stop()


def test_session_settings_from_the_environment(monkeypatch: Any) -> None:
    monkeypatch.setenv("ORDEX_VENUE_SENDER_COMP_ID", "DESK9")
    monkeypatch.setenv("ORDEX_VENUE_TARGET_COMP_ID", "XCHG9")
    monkeypatch.setenv("ORDEX_VENUE_RESET_SEQ", "true")
    monkeypatch.setenv("ORDEX_VENUE_HEARTBEAT", "7")
    monkeypatch.setenv("ORDEX_VENUE_USERNAME", "u9")
    s = Settings()
    assert (s.venue_sender_comp_id, s.venue_target_comp_id, s.venue_reset_seq,
            s.venue_heartbeat, s.venue_username) == ("DESK9", "XCHG9", True, 7, "u9")
