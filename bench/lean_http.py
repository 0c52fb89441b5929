"""A lean HTTP/1.1 client for the load generator: keep-alive connections over asyncio streams,
requests written in one piece, responses read by their Content-Length.

httpx costs this benchmark 1-4 ms of CPU per request, which on a 2-core machine shared with the
service caps the offered load near 100 orders/s; this costs about a tenth of that. It speaks only
what the benchmark needs of uvicorn (no chunked bodies, no redirects, no TLS) and fails loudly
(``httpx.TransportError``, which the traders already handle) on anything else. Connections idle
longer than ``IDLE_S`` are closed rather than reused, so that none is used just as uvicorn's
5-second keep-alive timeout closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

IDLE_S = 4.0


class LeanResponse:
    __slots__ = ("content", "keep_alive", "status_code")

    def __init__(self, status_code: int, content: bytes, keep_alive: bool) -> None:
        self.status_code = status_code
        self.content = content
        self.keep_alive = keep_alive

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.used = time.monotonic()

    async def request(self, head: bytes, body: bytes) -> LeanResponse:
        self.writer.write(head + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = 0
        keep_alive = True
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                keep_alive = False
            elif name == b"transfer-encoding":
                raise httpx.TransportError("a chunked response: not supported by this client")
        content = await self.reader.readexactly(length) if length else b""
        self.used = time.monotonic()
        return LeanResponse(status, content, keep_alive)

    def close(self) -> None:
        self.writer.close()


class LeanClient:
    """``post`` as httpx's ``AsyncClient.post(path, content=..., headers=...)``, on at most
    ``max_connections`` connections to ``base_url``."""

    def __init__(self, base_url: str, max_connections: int) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or url.hostname is None or url.port is None:
            raise ValueError(f"an http://host:port URL, not {base_url!r}")
        self.host, self.port = url.hostname, url.port
        self._host_header = f"Host: {self.host}:{self.port}\r\n".encode()
        self._gate = asyncio.Semaphore(max_connections)
        self._idle: list[_Connection] = []

    async def _connection(self) -> _Connection:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if now - conn.used < IDLE_S and not conn.reader.at_eof():
                return conn
            conn.close()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return _Connection(reader, writer)

    async def post(self, path: str, *, content: bytes,
                   headers: dict[str, str] | None = None) -> LeanResponse:
        head = b"".join([
            f"POST {path} HTTP/1.1\r\n".encode(), self._host_header,
            *(f"{k}: {v}\r\n".encode() for k, v in (headers or {}).items()),
            f"Content-Length: {len(content)}\r\n\r\n".encode()])
        async with self._gate:
            conn = await self._connection()
            try:
                response = await conn.request(head, content)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    ValueError, IndexError) as exc:
                conn.close()
                raise httpx.TransportError(f"{type(exc).__name__}: {exc}") from exc
            except BaseException:
                conn.close()  # cancelled mid-request: the connection's state is unknown
                raise
            if response.keep_alive:
                self._idle.append(conn)
            else:
                conn.close()
            return response

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
            with contextlib.suppress(Exception):
                await conn.writer.wait_closed()

    async def __aenter__(self) -> LeanClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()
