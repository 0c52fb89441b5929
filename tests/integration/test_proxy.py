"""The test TCP proxy (tests/support/proxy.py) against an echo server on loopback."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from tests.support.proxy import Mode, TcpProxy

WAIT = 5.0  # seconds; every step here is on loopback and takes milliseconds
QUIET = 0.25  # seconds of silence taken to mean nothing is coming


@dataclass
class EchoServer:
    port: int = 0
    connections: int = 0
    ended: list[str] = field(default_factory=list)  # how each connection ended: "eof" or "reset"
    greeting: bytes = b""
    received: bytearray = field(default_factory=bytearray)  # from every connection, in order
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    def push(self, data: bytes) -> None:
        """Send ``data`` unasked, from the server, on every connection."""
        for writer in self.writers:
            writer.write(data)


async def _echo(server: EchoServer, reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter) -> None:
    server.connections += 1
    server.writers.append(writer)
    try:
        if server.greeting:
            writer.write(server.greeting)
        while data := await reader.read(65536):
            server.received += data
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


async def stays_silent(reader: asyncio.StreamReader) -> None:
    """Nothing arrives for a while, and the connection does not end either."""
    try:
        data = await asyncio.wait_for(reader.read(65536), QUIET)
    except TimeoutError:
        return
    raise AssertionError(f"expected silence, got {data!r}")


async def echoes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 payload: bytes) -> bytes:
    writer.write(payload)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(payload)), WAIT)


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


async def test_reset_resets_live_connections_once_and_takes_new_ones(proxy: TcpProxy,
                                                                     echo: EchoServer) -> None:
    conns = [await connect(proxy) for _ in range(2)]
    for reader, writer in conns:
        assert await echoes(reader, writer, b"ok?") == b"ok?"

    await proxy.reset()

    assert proxy.live == 0
    assert proxy.mode is Mode.FORWARD
    assert not proxy.is_cut
    for reader, writer in conns:
        assert await ended_abruptly(reader) == "reset"
        writer.close()
    await wait_until(lambda: len(echo.ended) == 2, "the server saw its connections end")
    assert echo.ended == ["reset"] * 2
    assert await roundtrip(proxy, b"straight away") == b"straight away"
    assert (proxy.accepted, proxy.refused) == (3, 0)


async def test_blackhole_silences_both_ways_without_ending_anything(proxy: TcpProxy,
                                                                    echo: EchoServer) -> None:
    reader, writer = await connect(proxy)
    assert await echoes(reader, writer, b"before") == b"before"

    await proxy.blackhole()
    assert proxy.mode is Mode.BLACKHOLE
    writer.write(b"lost on the way up")
    echo.push(b"lost on the way down")
    late_reader, late_writer = await connect(proxy)  # taken, and blackholed too
    late_writer.write(b"anyone there?")
    await wait_until(lambda: echo.connections == 2, "the late connection reached the server")
    echo.push(b"lost on the way down")
    await asyncio.gather(stays_silent(reader), stays_silent(late_reader))
    assert echo.received == b"before"
    assert echo.ended == []
    assert proxy.live == 2

    await proxy.restore()
    assert proxy.mode is Mode.FORWARD
    assert await echoes(reader, writer, b"after") == b"after"  # nothing dropped came late
    assert await echoes(late_reader, late_writer, b"late") == b"late"
    assert echo.received == b"beforeafterlate"
    writer.close()
    late_writer.close()


async def test_blackhole_holds_an_end_of_stream_until_restore(proxy: TcpProxy,
                                                              echo: EchoServer) -> None:
    reader, writer = await connect(proxy)
    assert await echoes(reader, writer, b"hi") == b"hi"
    await proxy.blackhole()
    writer.write_eof()
    await asyncio.sleep(QUIET)
    assert echo.ended == []  # the server hears nothing, not even the close
    await proxy.restore()
    await wait_until(lambda: echo.ended == ["eof"], "the server saw the client's EOF")
    assert await asyncio.wait_for(reader.read(), WAIT) == b""  # and the server's close came back
    writer.close()
    await wait_until(lambda: proxy.live == 0, "the proxy dropped the finished connection")


async def test_half_open_passes_requests_but_drops_replies(proxy: TcpProxy,
                                                           echo: EchoServer) -> None:
    reader, writer = await connect(proxy)
    assert await echoes(reader, writer, b"before") == b"before"

    await proxy.half_open()
    assert proxy.mode is Mode.HALF_OPEN
    writer.write(b"request")
    await wait_until(lambda: echo.received == b"beforerequest", "the request reached the server")
    echo.greeting = b"welcome"
    late_reader, late_writer = await connect(proxy)  # taken, and half-open too
    late_writer.write(b"x")
    await wait_until(lambda: echo.received == b"beforerequestx", "the late request arrived")
    await asyncio.gather(stays_silent(reader), stays_silent(late_reader))
    assert echo.ended == []

    await proxy.restore()
    assert await echoes(reader, writer, b"after") == b"after"  # the dropped reply is gone
    assert await echoes(late_reader, late_writer, b"y") == b"y"  # so is the greeting
    writer.close()
    late_writer.close()


async def test_half_open_holds_the_servers_close_until_restore(proxy: TcpProxy,
                                                               echo: EchoServer) -> None:
    reader, writer = await connect(proxy)
    assert await echoes(reader, writer, b"hi") == b"hi"
    await proxy.half_open()
    echo.writers[0].close()
    await wait_until(lambda: echo.ended == ["eof"], "the server's connection ended")
    await stays_silent(reader)
    await proxy.restore()
    assert await asyncio.wait_for(reader.read(), WAIT) == b""
    writer.close()
    await wait_until(lambda: proxy.live == 0, "the proxy dropped the finished connection")


async def test_latency_delays_each_way_without_adding_up(proxy: TcpProxy,
                                                         echo: EchoServer) -> None:
    latency = 0.15
    loop = asyncio.get_running_loop()
    proxy.set_latency(latency)
    assert proxy.latency == latency
    reader, writer = await connect(proxy)

    start = loop.time()
    writer.write(b"one")
    await wait_until(lambda: echo.received == b"one", "the server got the bytes")
    assert loop.time() - start >= latency  # on the way up
    assert await asyncio.wait_for(reader.readexactly(3), WAIT) == b"one"
    assert loop.time() - start >= 2 * latency  # and on the way down

    start = loop.time()
    for i in range(5):  # chunks in flight side by side: each delayed, not one after another
        writer.write(b"%d," % i)
        await asyncio.sleep(0.02)
    assert await asyncio.wait_for(reader.readexactly(10), WAIT) == b"0,1,2,3,4,"
    assert 2 * latency <= loop.time() - start < 5 * latency

    writer.write(b"slow ")
    await asyncio.sleep(0.02)
    proxy.set_latency(0)  # what is in flight stays in flight, and nothing overtakes it
    writer.write(b"fast")
    assert await asyncio.wait_for(reader.readexactly(9), WAIT) == b"slow fast"

    start = loop.time()
    assert await echoes(reader, writer, b"no delay") == b"no delay"
    assert loop.time() - start < latency
    writer.close()


async def test_latency_delays_the_end_of_a_stream_in_order(proxy: TcpProxy,
                                                           echo: EchoServer) -> None:
    proxy.set_latency(0.1)
    reader, writer = await connect(proxy)
    writer.write(b"last words")
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), WAIT) == b"last words"
    assert echo.ended == ["eof"]
    writer.close()


async def test_restore_turns_latency_off_and_bad_latency_is_refused(proxy: TcpProxy) -> None:
    proxy.set_latency(0.5)
    await proxy.restore()
    assert proxy.latency == 0
    for bad in (-0.1, float("nan")):
        with pytest.raises(ValueError):
            proxy.set_latency(bad)
    assert proxy.latency == 0


async def test_one_mode_at_a_time(proxy: TcpProxy) -> None:
    await proxy.half_open()
    await proxy.blackhole()
    assert proxy.mode is Mode.BLACKHOLE
    await proxy.cut()
    assert proxy.mode is Mode.CUT
    assert proxy.is_cut
    await proxy.restore()
    assert proxy.mode is Mode.FORWARD
    assert await roundtrip(proxy, b"plain") == b"plain"


async def test_reset_and_cut_are_prompt_with_bytes_in_flight_and_ends_held(
        proxy: TcpProxy, echo: EchoServer) -> None:
    loop = asyncio.get_running_loop()
    for fault in (proxy.reset, proxy.cut):
        reader, writer = await connect(proxy)
        assert await echoes(reader, writer, b"hi") == b"hi"
        proxy.set_latency(WAIT * 2)
        writer.write(b"in flight")
        await proxy.half_open()
        echo.writers[-1].close()  # the server's close, held back
        await asyncio.sleep(0.05)
        start = loop.time()
        await fault()
        assert loop.time() - start < 1
        assert proxy.live == 0
        assert await ended_abruptly(reader) == "reset"
        writer.close()
        await proxy.restore()
    assert proxy.refused == 0


async def test_reset_keeps_the_mode(proxy: TcpProxy, echo: EchoServer) -> None:
    reader, writer = await connect(proxy)
    assert await echoes(reader, writer, b"hi") == b"hi"
    await proxy.blackhole()
    await proxy.reset()
    assert await ended_abruptly(reader) == "reset"
    writer.close()
    assert proxy.mode is Mode.BLACKHOLE
    reader, writer = await connect(proxy)  # taken, and still blackholed
    writer.write(b"anyone there?")
    await stays_silent(reader)
    await proxy.restore()
    assert await echoes(reader, writer, b"back") == b"back"
    writer.close()
