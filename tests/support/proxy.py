"""A TCP proxy on loopback for putting faults between a client and a server in tests.

It runs inside the test's event loop and only pipes bytes, both ways, so HTTP keep-alive,
WebSocket and FIX traffic pass through it unchanged; a half-close (EOF) from one side is passed
on too. Its listening socket is kept all along, so every fault below is undone by ``restore()``
on the same port, with no rebinding race. The faults:

``cut()``
    Resets every live connection at once, on both sides, and until ``restore()`` resets each
    new one as soon as it is accepted. A client sees the cut as ECONNRESET
    (``ConnectionResetError``, ``net::ERR_CONNECTION_RESET`` in a browser), both on the
    connections it had and on the ones it opens while cut.

``reset()``
    A one-off connection reset: resets every live connection, on both sides, as ``cut()`` does,
    but leaves the proxy as it was, so new connections are taken as usual straight away.

``blackhole()``
    Until ``restore()``, keeps every connection open but silently drops every byte, both ways:
    no error, no EOF, just silence (so FIX heartbeats time out on their own, and the peers
    decide when to give up). New connections are still accepted, and connected through to the
    target, but are blackholed too: the target sees a connection that never says anything.
    Dropped bytes are lost for good, not held back. The end of a stream (an EOF or a reset
    from one side) is held back instead, and passed on at ``restore()``, as a real link would
    once it came back; so a peer that gives up and closes its end leaves the other side in
    silence until then.

``half_open()``
    Until ``restore()``, the connections stay established and client→server bytes still flow,
    but server→client bytes are dropped, as in ``blackhole()`` (an EOF or a reset from the
    server is held back till ``restore()``): requests reach the server, replies never come
    back. New connections are taken, and are half-open too.

``set_latency(seconds)``
    Delays every chunk forwarded, each way, by ``seconds`` from when the proxy read it; the
    order within each direction is kept and the delays do not add up (chunks in flight are
    delayed side by side, not one after another). An EOF or a reset is delayed the same way,
    in order after the data before it. ``0`` turns it off (chunks already in flight still
    arrive in order). It combines with the modes above.

``blackhole()``, ``half_open()`` and ``cut()`` are modes, one at a time (the last one set
wins); ``restore()`` ends whichever is on, and turns the latency off too, back to plain
forwarding.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import socket
import struct
from types import TracebackType

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024
_IN_FLIGHT = 1024  # chunks queued per direction before the proxy stops reading (back-pressure)
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, not FIN


class Mode(enum.Enum):
    FORWARD = "forward"
    CUT = "cut"
    BLACKHOLE = "blackhole"
    HALF_OPEN = "half_open"


class _Direction(enum.Enum):
    UP = "client→server"
    DOWN = "server→client"


_DROPPED = {
    Mode.FORWARD: frozenset[_Direction](),
    Mode.CUT: frozenset[_Direction](),  # every connection is reset anyway
    Mode.BLACKHOLE: frozenset({_Direction.UP, _Direction.DOWN}),
    Mode.HALF_OPEN: frozenset({_Direction.DOWN}),
}
_OTHER = {_Direction.UP: _Direction.DOWN, _Direction.DOWN: _Direction.UP}

# What travels through a direction's queue: (when it is due, bytes | the end of the stream,
# which is None for an EOF or the exception reading ended with).
_Item = tuple[float, bytes | OSError | None]


def _reset(writer: asyncio.StreamWriter | None) -> None:
    """Close the connection at once, with an RST where the socket still allows it."""
    if writer is None:
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    writer.transport.abort()


class _Link:
    """One client connection and, once it is open, its connection to the target."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.client_reader = reader
        self.client = writer
        self.upstream: asyncio.StreamWriter | None = None
        self.task: asyncio.Task[None] | None = None
        self.dropped = False

    def reset(self) -> None:
        self.dropped = True
        _reset(self.client)
        _reset(self.upstream)


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target_host``:``target_port``.

    ``accepted`` counts the connections taken and forwarded; ``refused`` those reset on arrival
    while cut. ``live`` is how many forwarded connections are open now. ``errors`` keeps any
    unexpected exception a connection's forwarding ended with (a bug in the proxy, not a reset).
    ``mode`` and ``latency`` tell the fault in force (see the module's docstring).
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.accepted = 0
        self.refused = 0
        self.errors: list[BaseException] = []
        self._mode = Mode.FORWARD
        self._latency = 0.0
        self._changed = asyncio.Event()  # set, and replaced, whenever the mode changes
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the proxy is not started")
        return self._port

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def is_cut(self) -> bool:
        return self._mode is Mode.CUT

    @property
    def latency(self) -> float:
        return self._latency

    @property
    def live(self) -> int:
        return len(self._links)

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the proxy is already started")
        # A plain callback, not a coroutine: it runs inside connection_made, so a connection
        # is either registered or reset before the loop does anything else (no race with cut).
        self._server = await asyncio.start_server(self._on_connect, "127.0.0.1", 0)
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def cut(self) -> None:
        """Reset every live connection, both sides, and reset new ones until ``restore()``."""
        self._set_mode(Mode.CUT)
        await self._drop_all()

    async def reset(self) -> None:
        """Reset every live connection, both sides, once; new ones are taken as usual."""
        await self._drop_all()

    async def blackhole(self) -> None:
        """Drop every byte both ways, on live and new connections, until ``restore()``."""
        self._set_mode(Mode.BLACKHOLE)

    async def half_open(self) -> None:
        """Drop every server→client byte, on live and new connections, until ``restore()``."""
        self._set_mode(Mode.HALF_OPEN)

    def set_latency(self, seconds: float) -> None:
        """Delay every chunk forwarded, each way, by ``seconds``; 0 turns it off."""
        if not seconds >= 0:  # also refuses NaN
            raise ValueError(f"latency must be 0 or more seconds, not {seconds!r}")
        self._latency = float(seconds)

    async def restore(self) -> None:
        """End any fault: forward everything again, on the same port, with no latency."""
        self._latency = 0.0
        self._set_mode(Mode.FORWARD)

    async def close(self) -> None:
        """Stop listening and reset every live connection. Safe to call twice."""
        self._set_mode(Mode.CUT)
        server, self._server = self._server, None
        if server is not None:
            server.close()
        await self._drop_all()
        if server is not None:
            await server.wait_closed()

    async def __aenter__(self) -> TcpProxy:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    def _set_mode(self, mode: Mode) -> None:
        self._mode = mode
        self._wake()

    def _wake(self) -> None:
        """Let every pipe waiting for a change look again."""
        self._changed.set()
        self._changed = asyncio.Event()

    def _drops(self, direction: _Direction) -> bool:
        return direction in _DROPPED[self._mode]

    def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._mode is Mode.CUT:
            self.refused += 1
            _reset(writer)
            return
        self.accepted += 1
        link = _Link(reader, writer)
        self._links.add(link)
        link.task = asyncio.get_running_loop().create_task(self._forward(link))
        link.task.add_done_callback(self._forward_done)

    def _forward_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("proxy connection failed", exc_info=exc)
            self.errors.append(exc)

    async def _forward(self, link: _Link) -> None:
        try:
            try:
                up_reader, link.upstream = await asyncio.open_connection(self.target_host,
                                                                         self.target_port)
            except OSError:
                link.reset()  # the target is down: the client sees a reset, as from the server
                return
            if link.dropped:  # cut while connecting
                link.reset()
                return
            try:
                async with asyncio.TaskGroup() as tg:
                    for direction, src, dst in (
                            (_Direction.UP, link.client_reader, link.upstream),
                            (_Direction.DOWN, up_reader, link.client)):
                        queue: asyncio.Queue[_Item] = asyncio.Queue(_IN_FLIGHT)
                        tg.create_task(self._read(direction, src, queue))
                        tg.create_task(self._write(link, direction, queue, dst))
            except* OSError:
                link.reset()  # one side broke off: the other sees it end abruptly too
        finally:
            self._links.discard(link)
            link.client.close()
            if link.upstream is not None:
                link.upstream.close()

    async def _read(self, direction: _Direction, src: asyncio.StreamReader,
                    queue: asyncio.Queue[_Item]) -> None:
        """Read one direction into its queue, stamping each chunk with when it is due out."""
        loop = asyncio.get_running_loop()
        end: OSError | None = None
        try:
            while data := await src.read(_CHUNK):
                if not self._drops(direction):
                    await queue.put((loop.time() + self._latency, data))
        except OSError as exc:
            end = exc
        await queue.put((loop.time() + self._latency, end))

    async def _write(self, link: _Link, direction: _Direction, queue: asyncio.Queue[_Item],
                     dst: asyncio.StreamWriter) -> None:
        """Pass one direction's queue on at the due times. What comes due while the direction
        drops is dropped; the end of the stream is held until the direction forwards again."""
        loop = asyncio.get_running_loop()
        while not link.dropped:
            due, item = await queue.get()
            while not link.dropped and (delay := due - loop.time()) > 0:
                with contextlib.suppress(TimeoutError):  # woken early if the link is reset
                    await asyncio.wait_for(self._changed.wait(), delay)
            if link.dropped:
                break
            if isinstance(item, bytes):
                if self._drops(direction):
                    continue
                try:
                    dst.write(item)
                    await dst.drain()
                except OSError:
                    # dst broke off; the reset that tells src so goes the other way
                    await self._until_forwarding(link, _OTHER[direction])
                    raise
                continue
            await self._until_forwarding(link, direction)
            if link.dropped:
                break
            if item is not None:
                raise item
            if dst.can_write_eof() and not dst.is_closing():
                dst.write_eof()
            return
        # The proxy reset the link: end the whole link now, readers blocked on a full queue too.
        raise ConnectionResetError("the proxy reset the connection")

    async def _until_forwarding(self, link: _Link, direction: _Direction) -> None:
        """Wait while ``direction`` drops, unless the link is reset meanwhile."""
        while self._drops(direction) and not link.dropped:
            await self._changed.wait()

    async def _drop_all(self) -> None:
        """Reset every link; their forwarding tasks then end by themselves, having seen the
        sockets go (no cancelling: it could lose a target connection that was just opening)."""
        links = list(self._links)
        for link in links:
            link.reset()
        self._wake()  # pipes holding back an end of stream: their link is gone
        tasks = [link.task for link in links if link.task is not None]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=5)
        for task in pending:  # only if the target hangs in connect; not on loopback
            task.cancel()
        if pending:
            await asyncio.wait(pending)
