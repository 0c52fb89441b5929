"""The venue's admin API (``ordex venue --admin-port``) is for this machine's tools only."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ordex.venues.fix.server import VenueServer, demo_exchange
from tests.support.venue_process import VenueProcess


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VenueProcess]:
    process = VenueProcess(tmp_path_factory.mktemp("venue-admin"), log_messages=False)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def raw(venue: VenueProcess, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", venue.admin_port), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


def faults(venue: VenueProcess) -> dict[str, object]:
    return httpx.get(f"{venue.admin_url}/faults", timeout=10).json()


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.evil.example",
                                  "evil.example:8080", "localhost.evil.example", "10.0.0.5"])
def test_a_host_that_is_not_loopback_is_refused(venue: VenueProcess, host: str) -> None:
    """DNS rebinding: a page on another site reaches 127.0.0.1 under its own name."""
    r = httpx.get(f"{venue.admin_url}/orders", headers={"Host": host}, timeout=10)
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "host_not_allowed" and host in r.json()["error"]
    r = httpx.post(f"{venue.admin_url}/faults", json={"down": True}, headers={"Host": host},
                   timeout=10)
    assert r.status_code == 403
    assert faults(venue)["down"] is False


def test_a_request_without_host_is_refused(venue: VenueProcess) -> None:
    answer = raw(venue, b"GET /orders HTTP/1.0\r\n\r\n")
    assert answer.split(b" ", 2)[1] == b"403" and b"host_not_allowed" in answer


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_a_post_that_is_not_json_is_refused(venue: VenueProcess,
                                            content_type: str | None) -> None:
    """What a browser sends to another site without a preflight: form types, text, no type."""
    headers = {"Content-Type": content_type} if content_type else {}
    for path, body in (("/faults", b'{"down": true}'), ("/disconnect", b"")):
        r = httpx.post(f"{venue.admin_url}{path}", content=body, headers=headers, timeout=10)
        assert r.status_code == 415, r.text
        assert "application/json" in r.json()["error"]
    assert faults(venue)["down"] is False


def test_loopback_names_and_json_are_served(venue: VenueProcess) -> None:
    for host in (f"127.0.0.1:{venue.admin_port}", f"localhost:{venue.admin_port}", "[::1]"):
        r = httpx.get(f"{venue.admin_url}/orders", headers={"Host": host}, timeout=10)
        assert r.status_code == 200, (host, r.text)
    r = httpx.post(f"{venue.admin_url}/faults/reset", json={}, timeout=10)
    assert r.status_code == 200, r.text


def test_a_huge_body_is_refused_unread(venue: VenueProcess) -> None:
    answer = raw(venue, b"POST /faults HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        b"Content-Type: application/json\r\nContent-Length: 209715200\r\n\r\n{")
    assert answer.startswith(b"HTTP/1.1 413") and b"body_too_large" in answer


def _listening_addresses(port: int) -> set[str]:
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_it_listens_on_loopback_only(venue: VenueProcess) -> None:
    assert _listening_addresses(venue.admin_port) == {"0100007F"}  # 127.0.0.1


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
async def test_it_refuses_to_listen_anywhere_else(tmp_path: Path, host: str) -> None:
    server = VenueServer(demo_exchange(), port=0, admin_port=0, data_dir=tmp_path,
                         admin_host=host, tick_seconds=0)
    with pytest.raises(ValueError, match="loopback only"):
        await server.start()
    await server.stop()
