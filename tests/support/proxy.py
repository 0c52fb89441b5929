"""A TCP proxy on loopback for cutting a client's (a browser's) connection to a server in tests.

It runs inside the test's event loop and only pipes bytes, both ways, so HTTP keep-alive and
WebSocket traffic pass through it unchanged; a half-close (EOF) from one side is passed on too.

``cut()`` resets every live connection at once, on both sides, and until ``restore()`` resets
each new one as soon as it is accepted. The listening socket is kept all along, so ``restore()``
is back on the same port with no rebinding race; a client sees the cut as
ECONNRESET (``ConnectionResetError``, ``net::ERR_CONNECTION_RESET`` in a browser), both on the
connections it had and on the ones it opens while cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from types import TracebackType

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, not FIN


def _reset(writer: asyncio.StreamWriter | None) -> None:
    """Close the connection at once, with an RST where the socket still allows it."""
    if writer is None:
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    writer.transport.abort()


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    while data := await src.read(_CHUNK):
        dst.write(data)
        await dst.drain()
    if dst.can_write_eof() and not dst.is_closing():
        dst.write_eof()


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
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.accepted = 0
        self.refused = 0
        self.errors: list[BaseException] = []
        self._cut = False
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the proxy is not started")
        return self._port

    @property
    def is_cut(self) -> bool:
        return self._cut

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
        self._cut = True
        await self._drop_all()

    async def restore(self) -> None:
        """Forward new connections again, on the same port."""
        self._cut = False

    async def close(self) -> None:
        """Stop listening and reset every live connection. Safe to call twice."""
        self._cut = True
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

    def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
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
                    tg.create_task(_pipe(link.client_reader, link.upstream))
                    tg.create_task(_pipe(up_reader, link.client))
            except* OSError:
                link.reset()  # one side broke off: the other sees it end abruptly too
        finally:
            self._links.discard(link)
            link.client.close()
            if link.upstream is not None:
                link.upstream.close()

    async def _drop_all(self) -> None:
        """Reset every link; their forwarding tasks then end by themselves, having seen the
        sockets go (no cancelling: it could lose a target connection that was just opening)."""
        links = list(self._links)
        for link in links:
            link.reset()
        tasks = [link.task for link in links if link.task is not None]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=5)
        for task in pending:  # only if the target hangs in connect; not on loopback
            task.cancel()
        if pending:
            await asyncio.wait(pending)
