"""The simulated venue as its own process: a SimulatedExchange behind a FIX 4.4 acceptor, a
market-data ticker and an admin HTTP JSON API (``ordex venue``).

Threads: QuickFIX runs the acceptor on its own thread; its callbacks only hand the raw message to
the asyncio loop (``call_soon_threadsafe``). The loop owns the exchange: FIX requests, market
steps and admin commands (the admin HTTP server runs in a thread and submits each request to the
loop) all run there, one at a time, so the exchange needs no lock.

Faults, over TCP:

* ``ack_delay``: a new order's reports (and any later ones for that order) are held that long;
  other orders' reports are not.
* ``down``: the acceptor is stopped (connections dropped, new ones refused); reports made
  meanwhile wait and are sent when it comes back (QuickFIX stores them and resends them on the
  client's ResendRequest). Quotes and status answers are not kept.
* ``drop_connection_mid_execution``: right after the first fill of an order is sent, the TCP
  connection is dropped; it is one-shot (switched off when it fires) and the reports after it are
  delivered on reconnect by QuickFIX's resend.
* ``lose_acks``, ``reject_after_partial`` and ``visibility_lag`` are the exchange's own.

A NewOrderSingle or OrderCancelRequest that comes again with PossDupFlag/PossResend (a QuickFIX
resend) and was already received is ignored, as FIX expects; without the flag a repeated
ClOrdID is refused by the exchange as a duplicate.

Market data: a client subscribes per symbol and entry type (see ``messages``); when a symbol
changes, all its subscribed streams are refreshed, bid, offer, then trade. Changes made by orders
and admin commands go out at once; those of the market steps at most every ``md_interval``
seconds (every message sent stays in the FIX store for the session day).

Ids on the wire: ExecID and OrderID are the exchange's ids. ``ordex venue`` keeps its exchange's
journal in the data dir (``exchange-<name>.db``: resting orders, fills, id counters), so a venue
restarted on the same data dir goes on where it stopped and its ids never repeat. An exchange
without a journal numbers from 1 in each process; then ``-r<run>`` (run 2 on) is appended. Ids
the server mints itself (status answers, refusals, security lists) always carry ``-r<run>``; the
run count is written atomically and durably before the acceptor starts. The admin API shows the
ids as sent.

The FIX port listens on ``host`` only (default 127.0.0.1; ``0.0.0.0`` for every interface).
QuickFIX 1.15 has no bind address setting and listens on every interface, so for any other host
the acceptor is started on a spare port and its listening socket is then swapped, under the same
descriptor, for one bound to ``host:port`` (``_rebind``). Only the configured CompIDs (and, with a
password, the right Password) can log on. The admin API binds loopback only, answers
only a loopback Host and takes POSTs only as application/json (see ``admin_guard``).

Admin API (JSON): GET /orders, /book/{symbol}, /quotes, /faults, /snapshot,
/session; POST /faults (fault fields), /faults/reset, /market/{symbol} {"price": "190.00"},
/halt/{symbol} {"reason": ...}, /resume/{symbol}, /liquidity/{symbol} {"depth_levels": 1,
"level_size": "100", "level_size_max": "100"}, /step {"count": 1}, /expire {"reason": ...},
/disconnect (drop the FIX TCP connection now).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hmac
import json
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import quickfix as fix

from ordex import heap
from ordex.domain.instruments import InstrumentStatus
from ordex.domain.money import ZERO
from ordex.domain.orders import Side
from ordex.files import private_dir
from ordex.venues.base import ExecutionReport, NewOrder, Quote, ReportKind
from ordex.venues.fix import admin_guard
from ordex.venues.fix import messages as m
from ordex.venues.fix.messages import FixFormatError, FixMessage, MsgType, Tag
from ordex.venues.fix.session import (
    DEFAULT_CLIENT_COMP_ID,
    STORE_DIR,
    SessionConfig,
    acceptor_settings,
    start_socket,
)
from ordex.venues.simulated.exchange import SimulatedExchange
from ordex.venues.simulated.journal import ExchangeJournal, open_journal

log = logging.getLogger("ordex.venues.fix.server")

_StreamKey = tuple[Decimal | None, bool]
# what a BusinessMessageReject names as BusinessRejectRefID, first found
_REQUEST_ID_TAGS = (Tag.ORD_STATUS_REQ_ID, Tag.MASS_STATUS_REQ_ID, Tag.TRADE_REQUEST_ID,
                    Tag.SECURITY_REQ_ID, Tag.MD_REQ_ID, Tag.CL_ORD_ID)


def demo_exchange(name: str = "SIM", seed: int = 7,
                  journal: ExchangeJournal | None = None) -> SimulatedExchange:
    """The demo universe; symbols that are not active (suspended, delisted) are halted with
    their status as the reason."""
    from ordex.services.demo import demo_instruments

    instruments = demo_instruments()
    exchange = SimulatedExchange(
        name, [(i.symbol, i.reference_price, i.tick_size, i.lot_size) for i in instruments],
        seed=seed, journal=journal)
    for instrument in instruments:
        if instrument.status is not InstrumentStatus.ACTIVE:
            exchange.halt(instrument.symbol, instrument.status.value)
    return exchange


@dataclass(slots=True)
class _Wire:
    """What the FIX side remembers of an order: its terms and running totals for AvgPx."""

    order: NewOrder
    cum: Decimal = ZERO
    notional: Decimal = ZERO
    status: str = "0"


_Out = tuple[ExecutionReport | None, FixMessage]


class VenueServer:
    """The venue process's parts: FIX acceptor, ticker, admin HTTP, around one exchange."""

    def __init__(self, exchange: SimulatedExchange, *, port: int, admin_port: int,
                 data_dir: Path, client_comp_id: str = DEFAULT_CLIENT_COMP_ID,
                 heartbeat_seconds: int = 5, tick_seconds: float = 0.25,
                 md_interval: float = 1.0, admin_host: str = "127.0.0.1",
                 log_messages: bool = False, password: str | None = None,
                 host: str = "127.0.0.1") -> None:
        self.exchange = exchange
        self.name = exchange.name
        self.host = host
        self.port = port
        self.admin_port = admin_port
        self.admin_host = admin_host
        self.tick_seconds = tick_seconds
        self.md_interval = md_interval
        self._md_due = 0.0  # loop time of the next market-data flush after market steps
        self.data_dir = Path(data_dir)
        self.config = SessionConfig(
            sender_comp_id=exchange.name, target_comp_id=client_comp_id,
            store_dir=self.data_dir / STORE_DIR, heartbeat_seconds=heartbeat_seconds,
            log_dir=self.data_dir / "fix-log" if log_messages else None)
        self.run = 1
        self.logged_on = False
        self.logons = 0
        self.password = password or None
        self.refused_logons = 0
        self._refused: str | None = None  # set on QuickFIX's thread: the logon being refused
        self._sid = self.config.session_id()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._acceptor: Any = None
        self._acceptor_up = False
        self._acceptor_lock = asyncio.Lock()
        self._orders: dict[str, _Wire] = {}
        for view in exchange.orders():  # what a journaled exchange remembers
            terms = exchange.terms(view.client_order_id)
            assert terms is not None
            self._orders[view.client_order_id] = _Wire(
                terms, view.filled_quantity,
                view.filled_quantity * (view.average_price or ZERO),
                m.ord_status(view.state, view.filled_quantity))
        self._held: dict[str, list[_Out]] = {}
        self._cancels: set[str] = set()  # ClOrdIDs of cancel requests received
        self._outbox: list[FixMessage] = []
        # market data: MDReqID -> {(symbol, MDEntryType): (price, halted) last sent}
        self._subscriptions: dict[str, dict[tuple[str, str], _StreamKey]] = {}
        self._counter = 0
        self._ticker: asyncio.Task[None] | None = None
        self._http: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self._handlers: dict[str, Callable[[FixMessage], None]] = {
            MsgType.NEW_ORDER_SINGLE: self._on_new_order,
            MsgType.ORDER_CANCEL_REQUEST: self._on_cancel,
            MsgType.ORDER_STATUS_REQUEST: self._on_status,
            MsgType.ORDER_MASS_STATUS_REQUEST: self._on_mass_status,
            MsgType.TRADE_CAPTURE_REPORT_REQUEST: self._on_trade_capture,
            MsgType.SECURITY_LIST_REQUEST: self._on_security_list,
            MsgType.MARKET_DATA_REQUEST: self._on_market_data_request,
        }

    # ---- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the admin port, start the acceptor (unless the venue is down) and the ticker.
        Raises OSError if a port is taken."""
        self._loop = asyncio.get_running_loop()
        _check_port_free(self.port, self.host)
        self.run = _next_run(self.data_dir, self.name)
        self._http = _AdminHTTPServer((self.admin_host, self.admin_port), self)
        self.admin_port = int(self._http.server_address[1])
        self._http_thread = threading.Thread(target=self._http.serve_forever,
                                             name="venue-admin-http", daemon=True)
        self._http_thread.start()
        await self._apply_down()
        if self.tick_seconds > 0:
            self._ticker = asyncio.create_task(self._tick_loop(), name=f"{self.name}-ticker")

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._http is not None:
            await asyncio.to_thread(self._http.shutdown)
            self._http.server_close()
            self._http = None
        async with self._acceptor_lock:
            await self._stop_acceptor()

    async def serve_forever(self, ready: Callable[[str], None] | None = None) -> None:
        """Start, report readiness, run until SIGTERM or SIGINT, stop."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await self.start()
        try:
            if ready is not None:
                ready(self.ready_line())
            await stop.wait()
        finally:
            await self.stop()

    def ready_line(self) -> str:
        return (f"venue {self.name} listening: fix {self.host}:{self.port} "
                f"admin http://{self.admin_host}:{self.admin_port}")

    async def _start_acceptor(self) -> None:
        if self._acceptor is not None:
            return
        # The old acceptor's session must be gone, or the new one would be unregistered when
        # the old one is finally destroyed.
        for _ in range(100):
            if fix.Session.lookupSession(self._sid) is None:
                break
            await asyncio.sleep(0.05)
        _check_port_free(self.port, self.host)
        every = self.host in ("", "0.0.0.0")
        listen_port = self.port if every else _spare_port()
        self._acceptor = await start_socket(
            fix.SocketAcceptor, self, self.config, acceptor_settings(self.config, listen_port))
        if not every:
            _rebind(listen_port, self.host, self.port)
        self._acceptor_up = True
        log.info("FIX acceptor up on port %d (%s)", self.port, self._sid.toString())
        outbox, self._outbox = self._outbox, []
        for msg in outbox:
            self._send(msg)

    async def _stop_acceptor(self) -> None:
        acceptor = self._acceptor
        if acceptor is None:
            return
        self._acceptor_up = False
        self._subscriptions.clear()
        await asyncio.to_thread(acceptor.stop, True)
        self._acceptor = None
        del acceptor
        self.logged_on = False
        log.info("FIX acceptor stopped")

    async def _apply_down(self) -> None:
        """Make the acceptor follow the ``down`` switch (as it is once the lock is ours)."""
        async with self._acceptor_lock:
            if self.exchange.faults.down:
                await self._stop_acceptor()
            else:
                await self._start_acceptor()

    # ---- FIX session events (on the loop) -----------------------------------------------------

    def on_logon(self) -> None:
        if self._refused is not None:
            log.warning("FIX session %s: logon refused: %s", self._sid.toString(), self._refused)
            return
        self.logged_on = True
        self.logons += 1
        log.info("FIX session %s logged on", self._sid.toString())

    def on_logout(self) -> None:
        self.logged_on = False
        self._subscriptions.clear()
        if self._refused is not None:
            self._refused = None
            session = fix.Session.lookupSession(self._sid)
            if session is not None:
                session.logon()  # logout() disabled the session: let the next logon try
            return
        log.info("FIX session %s logged out", self._sid.toString())

    def on_logon_sent(self) -> None:
        pass

    def logon_fields(self) -> list[tuple[int, str]]:
        return []

    def check_logon(self, raw: str) -> str | None:
        """With a password set, a Logon must carry it as Password (554)."""
        if self.password is None:
            return None
        try:
            given = m.parse(raw).get(554)
        except FixFormatError:
            given = None
        if given is not None and hmac.compare_digest(given.encode(), self.password.encode()):
            return None
        why = ("Logon refused: no Password (554) given" if given is None
               else "Logon refused: wrong Password (554)")
        self._refused = why
        self.refused_logons += 1
        return why

    def on_admin(self, raw: str) -> None:
        """A logout or session reject from ordex's end: QuickFIX has logged it already."""

    def on_session_reject_sent(self, raw: str) -> None:
        with contextlib.suppress(FixFormatError):
            msg = m.parse(raw)
            log.warning("session reject of client message %s (35=%s): %s tag %s",
                        msg.get(Tag.REF_SEQ_NUM), msg.get(Tag.REF_MSG_TYPE), msg.get(Tag.TEXT),
                        msg.get(371))

    def on_message(self, raw: str) -> None:
        try:
            msg = m.parse(raw)
        except FixFormatError as exc:
            log.warning("unreadable FIX message: %s", exc)
            return
        if self._refused is not None:
            log.warning("ignoring 35=%s from a session whose logon was refused", msg.msg_type)
            return
        handler = self._handlers.get(msg.msg_type)
        try:
            if handler is None:
                self._send(m.business_reject(msg, "3", f"unsupported message type {msg.msg_type}"),
                           keep=False)
                return
            handler(msg)
        except FixFormatError as exc:
            ref_id = next((v for v in (msg.get(t) for t in _REQUEST_ID_TAGS) if v), None)
            self._send(m.business_reject(msg, "5", str(exc), ref_id), keep=False)
        except Exception:
            log.exception("handling 35=%s failed", msg.msg_type)

    def _on_new_order(self, msg: FixMessage) -> None:
        client_order_id = msg.require(Tag.CL_ORD_ID)
        if (msg.poss_dup or msg.header.get(Tag.POSS_RESEND) == "Y") \
                and client_order_id in self._orders:
            log.info("ignoring a resent NewOrderSingle %s already received", client_order_id)
            return
        try:
            order = m.parse_new_order(msg)
        except FixFormatError as exc:
            self._refuse(msg, client_order_id, str(exc))
            return
        if client_order_id not in self._orders:
            self._orders[client_order_id] = _Wire(order)
        reports = self.exchange.submit(order)
        delay = self.exchange.faults.ack_delay
        out: list[_Out] = [(r, self._wire(r, incoming=order)) for r in reports]
        if delay > 0:
            own = [o for o in out if o[0] is not None and o[0].client_order_id == client_order_id]
            self._hold(client_order_id, own, delay)
            out = [o for o in out if o[0] is None or o[0].client_order_id != client_order_id]
        self._emit(out)
        self._publish_quotes()

    def _refuse(self, msg: FixMessage, client_order_id: str, reason: str) -> None:
        """Reject a NewOrderSingle the exchange cannot even read."""
        try:
            side = m.parse_side(msg.get(Tag.SIDE))
        except FixFormatError:
            side = Side.BUY
        report = ExecutionReport(
            venue=self.name, client_order_id=client_order_id, exec_id=self._new_id("x"),
            kind=ReportKind.REJECTED, timestamp=datetime.now(UTC),
            symbol=msg.get(Tag.SYMBOL) or m.NOT_APPLICABLE, side=side, reason=reason)
        self._send(m.execution_report(report, exec_id=report.exec_id, order_id=None, order=None,
                                      average_price=ZERO))

    def _on_cancel(self, msg: FixMessage) -> None:
        cancel_id = msg.require(Tag.CL_ORD_ID)
        original = msg.require(Tag.ORIG_CL_ORD_ID)
        if cancel_id in self._cancels:
            if msg.poss_dup or msg.header.get(Tag.POSS_RESEND) == "Y":
                log.info("ignoring a resent OrderCancelRequest %s already received", cancel_id)
                return
        self._cancels.add(cancel_id)
        reports = self.exchange.cancel(original)
        self._emit([(r, self._wire(r, cancel_id=cancel_id if r.client_order_id == original
                                   else None)) for r in reports])
        self._publish_quotes()

    def _on_status(self, msg: FixMessage) -> None:
        client_order_id = msg.require(Tag.CL_ORD_ID)
        view = self.exchange.query(client_order_id)
        wire = self._orders.get(client_order_id)
        try:
            side = m.parse_side(msg.get(Tag.SIDE))
        except FixFormatError:
            side = Side.BUY
        self._send(m.status_report(
            view, exec_id=self._new_id("s"), client_order_id=client_order_id,
            symbol=msg.get(Tag.SYMBOL) or m.NOT_APPLICABLE, side=side,
            order_id=self._id(view.venue_order_id) if view else None,
            order=wire.order if wire else None,
            status_request_id=msg.get(Tag.ORD_STATUS_REQ_ID)), keep=False)

    def _on_mass_status(self, msg: FixMessage) -> None:
        request_id = msg.require(Tag.MASS_STATUS_REQ_ID)
        views = self.exchange.open_orders()
        if msg.get(Tag.MASS_STATUS_REQ_TYPE) == "1" and msg.get(Tag.SYMBOL):
            views = [v for v in views if v.symbol == msg.get(Tag.SYMBOL)]
        if not views:
            self._send(m.status_report(
                None, exec_id=self._new_id("s"), client_order_id="", symbol=m.NOT_APPLICABLE,
                side=Side.BUY, mass_request_id=request_id, total=0, last=True,
                text=m.NO_ORDERS), keep=False)
            return
        for i, view in enumerate(views):
            wire = self._orders.get(view.client_order_id)
            self._send(m.status_report(
                view, exec_id=self._new_id("s"), client_order_id=view.client_order_id,
                symbol=view.symbol, side=view.side, order_id=self._id(view.venue_order_id),
                order=wire.order if wire else None, mass_request_id=request_id,
                total=len(views), last=i == len(views) - 1), keep=False)

    def _on_trade_capture(self, msg: FixMessage) -> None:
        request_id = msg.require(Tag.TRADE_REQUEST_ID)
        start, end = m.parse_trade_capture_range(msg)
        fills = self.exchange.fills_since(start or datetime.min.replace(tzinfo=UTC))
        if end is not None:
            fills = [f for f in fills if f.timestamp <= end]
        self._send(m.trade_capture_ack(request_id, len(fills)), keep=False)
        for i, fill in enumerate(fills):
            self._send(m.trade_capture_report(
                fill, exec_id=self._id(fill.exec_id) or fill.exec_id,
                order_id=self._id(fill.venue_order_id), request_id=request_id,
                total=len(fills), last=i == len(fills) - 1), keep=False)

    def _on_security_list(self, msg: FixMessage) -> None:
        request_id = msg.require(Tag.SECURITY_REQ_ID)
        response_id = self._new_id("l")
        symbols = self.exchange.symbols()
        for i, symbol in enumerate(symbols):
            self._send(m.security_list(request_id, response_id, symbol, len(symbols),
                                       i == len(symbols) - 1), keep=False)

    def _on_market_data_request(self, msg: FixMessage) -> None:
        request_id = msg.require(Tag.MD_REQ_ID)
        kind = msg.get(Tag.SUBSCRIPTION_REQUEST_TYPE) or "0"
        if kind == "2":
            self._subscriptions.pop(request_id, None)
            return
        known = set(self.exchange.symbols())
        symbols = m.parse_symbols(msg)
        wanted = [s for s in symbols if s in known]
        entry_types = [t for t in m.parse_entry_types(msg) if t in m.ENTRY_TYPES]
        if not wanted or not entry_types:
            self._send(m.market_data_reject(
                request_id, "0" if not wanted else "8",
                f"unknown symbol {', '.join(symbols)}" if not wanted
                else "MDEntryType must be 0 (bid), 1 (offer) or 2 (trade)"), keep=False)
            return
        quotes = {q.symbol: q for q in self.exchange.quotes()}
        streams: dict[tuple[str, str], _StreamKey] = {}
        for symbol in wanted:
            for entry_type in entry_types:
                quote = quotes[symbol]
                streams[symbol, entry_type] = _stream_key(quote, entry_type)
                self._send(m.market_data_snapshot(request_id, quote, entry_type), keep=False)
        if kind == "1":
            self._subscriptions[request_id] = streams

    # ---- reports out --------------------------------------------------------------------------

    def _after(self, reports: list[ExecutionReport]) -> None:
        """Send what an admin command or market step caused, then changed quotes."""
        self._emit([(r, self._wire(r)) for r in reports])
        self._publish_quotes()

    def _wire(self, report: ExecutionReport, *, cancel_id: str | None = None,
              incoming: NewOrder | None = None) -> FixMessage:
        """The FIX message for one exchange report, keeping the order's running totals."""
        wire = self._orders.get(report.client_order_id)
        order_id = self._id(report.venue_order_id)
        if report.kind is ReportKind.CANCEL_REJECTED:
            return m.order_cancel_reject(
                report, cancel_id=cancel_id or report.client_order_id, order_id=order_id,
                status=wire.status if wire else "8")
        # A duplicate ClOrdID is refused without touching the order it duplicates.
        duplicate = report.kind is ReportKind.REJECTED and report.venue_order_id is None
        if wire is not None and not duplicate:
            if report.kind is ReportKind.FILL:
                wire.cum += report.last_quantity
                wire.notional += report.last_quantity * report.last_price
            wire.status = m.report_ord_status(report)
        average = wire.notional / wire.cum if wire is not None and wire.cum and not duplicate \
            else ZERO
        terms = incoming if duplicate or wire is None else wire.order
        cancelled = cancel_id is not None and report.kind is ReportKind.CANCELLED
        return m.execution_report(
            report, exec_id=self._id(report.exec_id) or report.exec_id, order_id=order_id,
            order=terms, average_price=average, cl_ord_id=cancel_id if cancelled else None,
            orig_cl_ord_id=report.client_order_id if cancelled else None)

    def _emit(self, out: list[_Out]) -> None:
        faults = self.exchange.faults
        for report, msg in out:
            if report is not None:
                held = self._held.get(report.client_order_id)
                if held is not None:
                    held.append((report, msg))
                    continue
                if faults.stall_reports:
                    continue  # lost on the way, while heartbeats go on
            self._send(msg)
            if (report is not None and report.kind is ReportKind.FILL
                    and faults.drop_connection_mid_execution
                    and report.cum_quantity == report.last_quantity):
                faults.drop_connection_mid_execution = False
                self.drop_connection(f"fault drop_connection_mid_execution after "
                                     f"{report.exec_id}")

    def _hold(self, client_order_id: str, out: list[_Out], delay: float) -> None:
        held = self._held.get(client_order_id)
        if held is not None:
            held.extend(out)
            return
        self._held[client_order_id] = list(out)
        assert self._loop is not None
        self._loop.call_later(delay, self._release, client_order_id)

    def _release(self, client_order_id: str) -> None:
        try:
            self._emit(self._held.pop(client_order_id, []))
        except Exception:
            log.exception("releasing held reports of %s failed", client_order_id)

    def _send(self, msg: FixMessage, keep: bool = True) -> None:
        """Send on the session. While the acceptor is down, ``keep`` messages wait in the
        outbox (others are dropped); while it is up but not logged on, QuickFIX stores them and
        resends them when the client asks."""
        session = fix.Session.lookupSession(self._sid) if self._acceptor_up else None
        if session is None:
            if keep:
                self._outbox.append(msg)
            return
        if not keep and not session.isLoggedOn():
            return
        session.send(msg.to_quickfix())

    def _publish_quotes(self) -> None:
        """When anything of a symbol changed (bid, offer, last, halt), a full refresh of every
        subscribed stream of that symbol, in the order bid, offer, trade: a client that gets the
        trade refresh has the symbol's whole quote."""
        if not self._subscriptions or not self.logged_on:
            return
        quotes = {q.symbol: q for q in self.exchange.quotes()}
        by_symbol: dict[str, list[tuple[str, str, str]]] = {}
        for request_id, streams in self._subscriptions.items():
            for symbol, entry_type in streams:
                by_symbol.setdefault(symbol, []).append((entry_type, request_id, symbol))
        for symbol, streams in by_symbol.items():
            quote = quotes[symbol]
            changed = [s for s in streams
                       if self._subscriptions[s[1]][symbol, s[0]] != _stream_key(quote, s[0])]
            if not changed:
                continue
            for entry_type, request_id, _ in sorted(streams):
                self._subscriptions[request_id][symbol, entry_type] = _stream_key(quote,
                                                                                  entry_type)
                self._send(m.market_data_snapshot(request_id, quote, entry_type), keep=False)

    def drop_connection(self, why: str) -> bool:
        """Drop the FIX TCP connection now (the client reconnects); True if there was one."""
        session = fix.Session.lookupSession(self._sid) if self._acceptor_up else None
        if session is None or not session.isLoggedOn():
            return False
        log.info("dropping the FIX connection: %s", why)
        session.disconnect()
        return True

    def _id(self, exchange_id: str | None) -> str | None:
        """The id as sent: the exchange's, with ``-r<run>`` from the second run on unless the
        exchange keeps a journal (its ids are unique over its whole life then)."""
        if exchange_id is None or self.run == 1 or self.exchange.persistent:
            return exchange_id
        return f"{exchange_id}-r{self.run}"

    def _new_id(self, kind: str) -> str:
        self._counter += 1
        return f"{self.name}-{kind}{self._counter}-r{self.run}"

    async def _tick_loop(self) -> None:
        """Market steps. Their fills go out at once; the quotes they move at most every
        ``md_interval`` seconds (conflated: every message sent is kept in the FIX store for the
        day, and a step moves nearly every symbol)."""
        assert self._loop is not None
        while True:
            await asyncio.sleep(self.tick_seconds)
            try:
                self._emit([(r, self._wire(r)) for r in self.exchange.step()])
                now = self._loop.time()
                if now >= self._md_due:
                    self._md_due = now + self.md_interval
                    self._publish_quotes()
            except Exception:
                log.exception("market step failed")

    # ---- admin API ----------------------------------------------------------------------------

    def session_state(self) -> dict[str, object]:
        session = fix.Session.lookupSession(self._sid) if self._acceptor_up else None
        state: dict[str, object] = {
            "session": self._sid.toString(), "acceptor": "up" if self._acceptor_up else "down",
            "logged_on": bool(session is not None and session.isLoggedOn()),
            "logons": self.logons, "run": self.run, "outbox": len(self._outbox),
            "held_orders": len(self._held), "market_data_subscriptions": len(self._subscriptions),
        }
        if session is not None:
            state["next_sender_seq"] = int(session.getExpectedSenderNum())
            state["next_target_seq"] = int(session.getExpectedTargetNum())
        return state

    def orders_json(self) -> list[dict[str, Any]]:
        orders: list[dict[str, Any]] = self.exchange.snapshot()["orders"]  # type: ignore[assignment]
        if self.run > 1:
            for order in orders:
                order["venue_order_id"] = self._id(order["venue_order_id"])
                for f in order["fills"]:
                    f["exec_id"] = self._id(f["exec_id"])
        return orders

    def call_admin(self, method: str, path: str, body: bytes) -> tuple[int, object]:
        """From the HTTP thread: run the command on the loop and wait for its answer."""
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(self.admin(method, path, body), self._loop)
        return future.result(timeout=30)

    async def admin(self, method: str, path: str, body: bytes) -> tuple[int, object]:
        try:
            data = json.loads(body) if body.strip() else {}
        except json.JSONDecodeError:
            return 400, {"error": "the body is not JSON"}
        if not isinstance(data, dict):
            return 400, {"error": "the body must be a JSON object"}
        parts = [p for p in urlsplit(path).path.split("/") if p]
        try:
            return await self._route(method, parts, data)
        except KeyError as exc:
            return 404, {"error": str(exc.args[0]) if exc.args else "not found"}
        except (ValueError, TypeError, InvalidOperation) as exc:
            return 400, {"error": str(exc) or type(exc).__name__}

    async def _route(self, method: str, parts: list[str],
                     data: dict[str, Any]) -> tuple[int, object]:
        ex = self.exchange
        match method, parts:
            case "GET", ["orders"]:
                return 200, {"venue": self.name, "orders": self.orders_json()}
            case "GET", ["book", symbol]:
                return 200, {"symbol": symbol, **ex.book(symbol).snapshot()}
            case "GET", ["quotes"]:
                return 200, {q.symbol: _quote_json(q) for q in ex.quotes()}
            case "GET", ["faults"]:
                return 200, ex.faults.as_dict()
            case "POST", ["faults"]:
                ex.faults.update(**data)
                await self._apply_down()
                return 200, ex.faults.as_dict()
            case "POST", ["faults", "reset"]:
                ex.faults.reset()
                await self._apply_down()
                return 200, ex.faults.as_dict()
            case "POST", ["market", symbol]:
                if "price" not in data:
                    raise ValueError("price is required, e.g. {\"price\": \"190.00\"}")
                reports = ex.move_market(symbol, Decimal(str(data["price"])))
                self._after(reports)
                return 200, {"reports": len(reports), "quote": _quote_json(ex.quote(symbol))}
            case "POST", ["halt", symbol]:
                ex.halt(symbol, str(data.get("reason") or "trading halt"))
                self._publish_quotes()
                return 200, {"quote": _quote_json(ex.quote(symbol))}
            case "POST", ["resume", symbol]:
                reports = ex.resume(symbol)
                self._after(reports)
                return 200, {"reports": len(reports), "quote": _quote_json(ex.quote(symbol))}
            case "POST", ["liquidity", symbol]:
                depth = data.get("depth_levels")
                if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool)):
                    raise ValueError("depth_levels must be a whole number")
                reports = ex.set_liquidity(symbol, depth, _dec(data.get("level_size")),
                                           _dec(data.get("level_size_max")))
                self._after(reports)
                return 200, {"reports": len(reports), "book": ex.book(symbol).snapshot()}
            case "POST", ["step"]:
                count = int(data.get("count", 1))
                total = 0
                for _ in range(max(0, count)):
                    reports = ex.step()
                    total += len(reports)
                    self._after(reports)
                return 200, {"steps": ex.steps, "reports": total}
            case "POST", ["expire"]:
                reports = ex.expire_day_orders(str(data.get("reason") or "end of day"))
                self._after(reports)
                return 200, {"reports": len(reports)}
            case "POST", ["disconnect"]:
                return 200, {"dropped": self.drop_connection("admin request")}
            case "GET", ["session"]:
                return 200, self.session_state()
            case "GET", ["snapshot"]:
                snapshot = ex.snapshot()
                snapshot["orders"] = self.orders_json()
                snapshot["fix"] = self.session_state()
                return 200, snapshot
        return 404, {"error": f"no route {method} /{'/'.join(parts)}"}


class _AdminHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], venue: VenueServer) -> None:
        admin_guard.check_bind(address[0])
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.venue = venue
        super().__init__(address, _AdminHandler)


class _AdminHandler(BaseHTTPRequestHandler):
    server: _AdminHTTPServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        refused = admin_guard.refusal(method, self.headers)
        if refused is not None:
            status, payload = refused
            self.close_connection = True  # the body, if any, is never read
        else:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            try:
                status, payload = self.server.venue.call_admin(method, self.path, body)
            except Exception as exc:
                log.exception("admin %s %s failed", method, self.path)
                status, payload = 500, {"error": str(exc) or type(exc).__name__}
        data = json.dumps(payload, default=_json_default).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if refused is not None:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("admin: " + format, *args)


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _dec(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _stream_key(quote: Quote, entry_type: str) -> _StreamKey:
    return m.quote_price(quote, entry_type), quote.halted


def _quote_json(quote: Quote) -> dict[str, object]:
    def text(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return {"symbol": quote.symbol, "bid": text(quote.bid), "ask": text(quote.ask),
            "last": text(quote.last), "timestamp": quote.timestamp.isoformat(),
            "halted": quote.halted}


def _check_port_free(port: int, host: str = "") -> None:
    """QuickFIX aborts the process if it cannot listen, so find out first (raises OSError)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def _spare_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listening_fd(port: int) -> int:
    """The descriptor of this process's socket listening on every interface at ``port``."""
    fd_dir = Path("/proc/self/fd") if Path("/proc/self/fd").is_dir() else Path("/dev/fd")
    for entry in fd_dir.iterdir():
        if not entry.name.isdigit():
            continue
        fd = int(entry.name)
        try:
            with socket.socket(fileno=os.dup(fd)) as sock:
                listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
                if listening and sock.family == socket.AF_INET and \
                        sock.getsockname() == ("0.0.0.0", port):
                    return fd
        except OSError:
            continue
    raise OSError(f"the FIX acceptor's listening socket on port {port} was not found")


def _rebind(quickfix_port: int, host: str, port: int) -> None:
    """Put a socket listening on ``host:port`` in place of QuickFIX's listening socket (on every
    interface at ``quickfix_port``), under the same descriptor: QuickFIX accepts from it as
    before, and the socket on every interface is closed."""
    target = _listening_fd(quickfix_port)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(64)
        flags = fcntl.fcntl(target, fcntl.F_GETFL)  # blocking or not, as QuickFIX set its own
        fcntl.fcntl(sock.fileno(), fcntl.F_SETFL, flags)
        os.dup2(sock.fileno(), target)


def _next_run(data_dir: Path, name: str) -> int:
    """Count the runs on this data dir (the FIX session's store lives there). The new count is
    on disk (written to a temporary file, fsynced, renamed) before any id of the run is made, so
    a kill at any moment never gives two runs the same number."""
    private_dir(data_dir)
    path = data_dir / f"venue-{name}.json"
    try:
        runs = int(json.loads(path.read_text()).get("runs", 0))
    except FileNotFoundError:
        runs = 0
    except (OSError, ValueError, AttributeError) as exc:
        raise OSError(f"{path} is unreadable ({exc}); it counts this venue's runs, which keep "
                      "its ids unique: restore it or remove the data dir") from exc
    runs += 1
    temporary = path.with_suffix(".json.tmp")
    with open(temporary, "w") as out:
        out.write(json.dumps({"runs": runs}))
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
    directory = os.open(data_dir, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return runs


def main(*, port: int, admin_port: int, data_dir: Path, name: str = "SIM", seed: int = 7,
         tick_seconds: float = 0.25, md_interval: float = 1.0,
         client_comp_id: str = DEFAULT_CLIENT_COMP_ID,
         heartbeat_seconds: int = 5, log_messages: bool = False,
         password: str | None = None, host: str = "127.0.0.1") -> int:
    """``ordex venue``: run until SIGTERM/SIGINT; prints one line when ready."""
    import sys

    os.umask(0o077)  # the FIX store and logs QuickFIX writes are the owner's alone
    journal = open_journal(data_dir, name, datetime.now(UTC))
    server = VenueServer(demo_exchange(name, seed, journal), port=port, admin_port=admin_port,
                         data_dir=data_dir, client_comp_id=client_comp_id,
                         heartbeat_seconds=heartbeat_seconds, tick_seconds=tick_seconds,
                         md_interval=md_interval,
                         log_messages=log_messages, password=password, host=host)
    try:
        def ready(line: str) -> None:
            heap.settle()
            print(line, flush=True)

        asyncio.run(server.serve_forever(ready))
    except OSError as exc:
        print(f"error: cannot start the venue: {exc}", file=sys.stderr)
        return 2
    finally:
        server.exchange.close()
    return 0
