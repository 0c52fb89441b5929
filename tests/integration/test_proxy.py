"""The test TCP proxy (tests/support/proxy.py) against an echo server on loopback."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from tests.support.proxy import TcpProxy

WAIT = 5.0  # seconds; every step here is on loopback and takes milliseconds


@dataclass
class EchoServer:
    port: int = 0
    connections: int = 0
    ended: list[str] = field(default_factory=list)  # how each connection ended: "eof" or "reset"
    greeting: bytes = b""


async def _echo(server: EchoServer, reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter) -> None:
    server.connections += 1
    try:
        if server.greeting:
            writer.write(server.greeting)
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        server.ended.append("eof")
    except ConnectionResetError:
        server.ended.append("reset")
    finally:
        writer.close()


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    state = EchoServer()
    server = await asyncio.start_server(lambda r, w: _echo(state, r, w), "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    async with server:
        yield state


@pytest.fixture
async def proxy(echo: EchoServer) -> AsyncIterator[TcpProxy]:
    async with TcpProxy("127.0.0.1", echo.port) as p:
        yield p
        assert p.errors == []


async def connect(proxy: TcpProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", proxy.port), WAIT)


async def roundtrip(proxy: TcpProxy, payload: bytes) -> bytes:
    reader, writer = await connect(proxy)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(payload)), WAIT)
    finally:
        writer.close()


async def ended_abruptly(reader: asyncio.StreamReader) -> str:
    """How the connection ends: "reset", or "eof" (bytes arriving instead fail the test)."""
    try:
        data = await asyncio.wait_for(reader.read(65536), WAIT)
    except ConnectionResetError:
        return "reset"
    assert data == b"", f"expected the connection to end, got {data!r}"
    return "eof"


async def wait_until(predicate: Callable[[], bool], what: str) -> None:
    for _ in range(int(WAIT / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting until {what}")


async def test_bytes_flow_both_ways(proxy: TcpProxy, echo: EchoServer) -> None:
    echo.greeting = b"hello from the server\n"
    reader, writer = await connect(proxy)
    assert await asyncio.wait_for(reader.readline(), WAIT) == b"hello from the server\n"
    for message in (b"ping\n", b"\x00\xff binary \r\n", b"x" * 100_000):
        writer.write(message)
        await writer.drain()
        assert await asyncio.wait_for(reader.readexactly(len(message)), WAIT) == message
    writer.close()
    await writer.wait_closed()
    assert proxy.accepted == 1
    assert echo.connections == 1


async def test_large_streams_both_ways_at_once(proxy: TcpProxy) -> None:
    """Several MiB each way at the same time: back-pressure must not dead-lock the pipes."""
    payload = os.urandom(4 * 1024 * 1024)
    reader, writer = await connect(proxy)

    async def send() -> None:
        for i in range(0, len(payload), 65536):
            writer.write(payload[i:i + 65536])
            await writer.drain()

    sender = asyncio.create_task(send())
    received = await asyncio.wait_for(reader.readexactly(len(payload)), 30)
    await sender
    assert received == payload
    writer.close()


async def test_half_close_is_passed_on(proxy: TcpProxy, echo: EchoServer) -> None:
    reader, writer = await connect(proxy)
    writer.write(b"last words")
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), WAIT) == b"last words"  # echoed, then EOF
    writer.close()
    await wait_until(lambda: echo.ended == ["eof"], "the server saw the client's EOF")
    await wait_until(lambda: proxy.live == 0, "the proxy dropped the finished connection")


async def test_concurrent_connections_are_counted(proxy: TcpProxy, echo: EchoServer) -> None:
    results = await asyncio.gather(*(roundtrip(proxy, f"conn {i}".encode()) for i in range(5)))
    assert results == [f"conn {i}".encode() for i in range(5)]
    assert proxy.accepted == 5
    assert echo.connections == 5


async def test_cut_resets_open_connections_on_both_sides(proxy: TcpProxy,
                                                         echo: EchoServer) -> None:
    conns = [await connect(proxy) for _ in range(3)]
    for reader, writer in conns:
        writer.write(b"ok?")
        assert await asyncio.wait_for(reader.readexactly(3), WAIT) == b"ok?"
    assert proxy.live == 3

    await proxy.cut()

    assert proxy.live == 0
    for reader, writer in conns:
        assert await ended_abruptly(reader) == "reset"
        writer.close()
    await wait_until(lambda: len(echo.ended) == 3, "the server saw its connections end")
    assert echo.ended == ["reset"] * 3


async def test_cut_refuses_new_connections(proxy: TcpProxy, echo: EchoServer) -> None:
    await proxy.cut()
    try:
        reader, writer = await connect(proxy)
    except ConnectionError:
        pass  # refused outright: fine too
    else:
        writer.write(b"anyone there?")
        assert await ended_abruptly(reader) == "reset"
        writer.close()
    assert proxy.refused == 1
    assert proxy.accepted == 0
    assert echo.connections == 0


async def test_restore_accepts_again_on_the_same_port(proxy: TcpProxy, echo: EchoServer) -> None:
    port = proxy.port
    assert await roundtrip(proxy, b"before") == b"before"
    await proxy.cut()
    with pytest.raises(ConnectionError):
        await roundtrip(proxy, b"during")
    await proxy.restore()
    assert proxy.port == port
    assert await roundtrip(proxy, b"after") == b"after"
    assert proxy.accepted == 2
    assert proxy.refused == 1
    assert echo.connections == 2


async def test_repeated_cuts(proxy: TcpProxy) -> None:
    for i in range(5):
        reader, writer = await connect(proxy)
        writer.write(b"%d" % i)
        assert await asyncio.wait_for(reader.readexactly(1), WAIT) == b"%d" % i
        await proxy.cut()
        assert await ended_abruptly(reader) == "reset"
        writer.close()
        await proxy.restore()
    assert proxy.accepted == 5


async def test_client_reset_is_passed_on_to_the_server(proxy: TcpProxy,
                                                       echo: EchoServer) -> None:
    reader, writer = await connect(proxy)
    writer.write(b"hi")
    assert await asyncio.wait_for(reader.readexactly(2), WAIT) == b"hi"
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()  # an RST, as from a browser killed or a network gone
    await wait_until(lambda: len(echo.ended) == 1, "the server saw the connection end")
    assert echo.ended == ["reset"]
    await wait_until(lambda: proxy.live == 0, "the proxy dropped the connection")


async def test_target_down_resets_the_client() -> None:
    probe = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    dead_port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    async with TcpProxy("127.0.0.1", dead_port) as proxy:
        reader, writer = await connect(proxy)
        assert await ended_abruptly(reader) == "reset"
        writer.close()
        assert proxy.accepted == 1
        await wait_until(lambda: proxy.live == 0, "the proxy dropped the connection")
        assert proxy.errors == []


async def test_close_stops_listening(echo: EchoServer) -> None:
    proxy = TcpProxy("127.0.0.1", echo.port)
    await proxy.start()
    reader, writer = await connect(proxy)
    await proxy.close()
    assert await ended_abruptly(reader) == "reset"
    writer.close()
    with pytest.raises(ConnectionRefusedError):
        await connect(proxy)
    await proxy.close()  # twice is fine
