"""Abuse against a real ``ordex serve`` (uvicorn) and ``ordex venue``, over raw sockets."""

from __future__ import annotations

import os
import re
import select
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_abuse import assert_owner_only
from tests.support.postgres import free_port
from tests.support.serve import ordex_serve
from tests.support.venue_process import VenueProcess

HEADER_TIMEOUT = 1.0
MiB = 1024 * 1024


@dataclass
class Serve:
    proc: subprocess.Popen[str]
    port: int
    data: Path
    keys: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss(self) -> int:
        """The server's resident memory in bytes."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        assert match, status
        return int(match.group(1)) * 1024


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    port = free_port()
    data = tmp_path_factory.mktemp("serve") / "data"
    env = {**os.environ, "ORDEX_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT)}
    with ordex_serve(data, port, env=env, preexec_fn=lambda: os.umask(0o022)) as (proc, keys):
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        yield Serve(proc, port, data, keys)


def connect(serve: Serve) -> socket.socket:
    return socket.create_connection(("127.0.0.1", serve.port), timeout=10)


def closed_within(conn: socket.socket, seconds: float) -> tuple[float, bytes]:
    """Wait for the server to close ``conn``: how long it took and what it said first."""
    start = time.monotonic()
    said = b""
    while time.monotonic() - start < seconds:
        ready, _, _ = select.select([conn], [], [], 0.05)
        if ready:
            try:
                chunk = conn.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return time.monotonic() - start, said
            said += chunk
    return float("inf"), said


def test_a_client_that_never_finishes_its_headers_is_dropped(serve: Serve) -> None:
    silent, partial, dripping = connect(serve), connect(serve), connect(serve)
    partial.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    started = time.monotonic()
    sent = 0
    while time.monotonic() - started < HEADER_TIMEOUT + 1:  # one byte every 0.1 s
        try:
            dripping.send(b"GET /healthz HTTP/1.1\r\nX-Slow: " [sent % 31:sent % 31 + 1]
                          if sent < 31 else b"a")
        except OSError:
            break
        sent += 1
        time.sleep(0.1)
    for conn in (silent, partial, dripping):
        took, said = closed_within(conn, HEADER_TIMEOUT + 3)
        assert took < HEADER_TIMEOUT + 3, "the server kept a connection with no headers open"
        if said:
            assert said.startswith(b"HTTP/1.1 408") and b"request_timeout" in said, said
        conn.close()
    assert httpx.get(f"{serve.url}/healthz", timeout=5).status_code == 200


def whole_response(conn: socket.socket) -> bytes:
    """One response, headers and body (its Content-Length), however the server's writes were
    split on the wire."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += conn.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    declared = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    assert declared is not None, head
    length = int(declared.group(1))
    while len(body) < length:
        body += conn.recv(65536)
    return answer[:len(head) + 4] + body


def test_a_second_request_that_never_finishes_is_dropped_too(serve: Serve) -> None:
    with connect(serve) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = whole_response(conn)
        assert answer.startswith(b"HTTP/1.1 200"), answer
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        took, said = closed_within(conn, HEADER_TIMEOUT + 3)
        assert took < HEADER_TIMEOUT + 3 and said.startswith(b"HTTP/1.1 408"), said


def send_huge(serve: Serve, head: bytes, total: int, *, chunked: bool) -> tuple[bytes, int]:
    """Send ``head`` then up to ``total`` body bytes until the server answers and closes; the
    answer and how many body bytes got through."""
    conn = connect(serve)
    conn.sendall(head)
    answer, sent = b"", 0
    piece = b" " * MiB
    frame = f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece
    try:
        while sent < total:
            ready, _, _ = select.select([conn], [], [], 0)
            if ready:
                break
            conn.sendall(frame)
            sent += len(piece)
    except OSError:
        pass
    _, rest = closed_within(conn, 10)
    answer += rest
    conn.close()
    return answer, sent


def test_huge_bodies_are_refused_without_the_server_holding_them(serve: Serve) -> None:
    """Today a keyless 200 MB body is read and parsed: the server grows from 100 MB to 900."""
    total = 200 * MiB
    before = serve.rss()
    keyless = (b"POST /v1/admin/accounts HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % total)
    answer, sent = send_huge(serve, keyless, total, chunked=False)
    assert answer.startswith(b"HTTP/1.1 401") and b"unauthorized" in answer, answer[:300]
    assert sent < 32 * MiB, f"the server took {sent:,} bytes of a body it refused"
    keyed = (b"POST /v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
             + serve.keys["alice"].encode() + b"\r\nContent-Type: application/json\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n")
    answer, sent = send_huge(serve, keyed, total, chunked=True)
    assert answer.startswith(b"HTTP/1.1 413") and b"body_too_large" in answer, answer[:300]
    assert sent < 32 * MiB, f"the server took {sent:,} bytes of a body it refused"
    grown = serve.rss() - before
    assert grown < 30 * MiB, f"the server grew by {grown / MiB:.0f} MiB"


def test_the_data_dir_of_serve_is_owner_only(serve: Serve) -> None:
    headers = {"Authorization": f"Bearer {serve.keys['alice']}"}
    r = httpx.post(f"{serve.url}/v1/orders", headers=headers, timeout=10, json={
        "symbol": "AAPL", "side": "buy", "quantity": "1", "type": "market"})
    assert r.status_code == 201, r.text
    found = assert_owner_only(serve.data)
    assert {"ordex.db", "ordex.db-wal", "demo-keys.json"} <= set(found), sorted(found)


def test_the_data_dir_of_the_venue_is_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        venue = VenueProcess(tmp_path / "venue", log_messages=True)
        venue.start()
    finally:
        os.umask(old)
    try:
        venue.log_path.chmod(0o600)  # the harness's capture of stderr, not the venue's own file
        found = assert_owner_only(venue.data_dir)
    finally:
        venue.stop()
    assert any(name.startswith("fix-store/") for name in found), sorted(found)
