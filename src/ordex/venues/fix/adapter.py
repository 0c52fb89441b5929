"""FixVenue: the Venue protocol over a FIX 4.4 session (QuickFIX SocketInitiator).

Threads: QuickFIX runs the initiator on its own thread. Its callbacks do nothing but hand the raw
message (``toString()``) to the asyncio loop with ``call_soon_threadsafe``; parsing, de-duplication
and the queues live on the loop. Messages out go through one dedicated sender thread (in order),
so the loop never waits on QuickFIX's session lock or its FileStore writes.

* ``start()`` starts the initiator and waits up to ``logon_timeout`` for the logon; if the venue is
  not up it returns anyway and QuickFIX keeps reconnecting every ``reconnect_seconds``.
* ``submit``/``cancel``/``query``/``open_orders``/``fills_since`` raise VenueUnavailable while the
  session is not logged on, and requests time out (``request_timeout``) into VenueUnavailable.
* ``reports()``: ExecutionReports (and OrderCancelRejects) in the order received, each ExecID once
  (QuickFIX resends what was missed across a reconnect; a resent duplicate is dropped here).
* ``quotes()``: after each logon the adapter asks for the security list (35=x) and subscribes to
  market data (35=V): one stream per symbol and entry type (bid, offer, trade; see
  ``messages`` on repeating groups). Each MarketDataSnapshotFullRefresh (35=W) updates the
  symbol's Quote; it is published at the trade refresh, which the venue sends last.
* ``open_orders()``: OrderMassStatusRequest (35=AF, type 7) -> ExecutionReports with ExecType I.
* ``fills_since(since)``: TradeCaptureReportRequest (35=AD) with the start time -> AQ then one
  TradeCaptureReport (35=AE) per fill, with the same ExecIDs as the fills' ExecutionReports
  (CumQty, LeavesQty and liquidity are not in a trade capture report: 0 / None there).
* ``capabilities``: mass status, trade capture and market data are optional. After each logon
  the ones not learnt yet are asked for once; an answer means supported, a BusinessMessageReject
  (35=j), a session-level Reject (35=3), a MarketDataRequestReject (35=Y) or no answer within
  ``request_timeout`` means not supported (kept for the life of the process).
* A logon that fails is explained (``session_status()``, logged once per reason): the venue's
  Text (58) with a hint (``logon``), or what the connection did.
* ``stop()`` logs out (up to 2 s), then stops the initiator.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import logging
import uuid
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import quickfix as fix

from ordex.config import check_address
from ordex.domain.orders import Side
from ordex.venues.base import (
    Capabilities,
    Capability,
    ExecutionReport,
    NewOrder,
    Quote,
    SessionStatus,
    VenueOrder,
    VenueUnavailable,
)
from ordex.venues.fix import logon
from ordex.venues.fix import messages as m
from ordex.venues.fix.messages import ExecType, FixFormatError, FixMessage, MsgType, Tag
from ordex.venues.fix.session import (
    DEFAULT_CLIENT_COMP_ID,
    STORE_DIR,
    SessionConfig,
    initiator_settings,
    read_seqnums,
    start_socket,
)
from ordex.venues.simulated.inprocess import Stream

if TYPE_CHECKING:
    from ordex.config import Settings

log = logging.getLogger("ordex.venues.fix")

_QuoteKey = tuple[Decimal | None, Decimal | None, Decimal | None, bool]
_SEEN_EXEC_IDS = 200_000
_KNOWN_ORDERS = 200_000
_MD_SETTLE = 0.05  # seconds a bid/offer refresh waits for its symbol's trade refresh
_LOGON_TIMEOUT = 10  # QuickFIX's LogonTimeout (session settings)
_PROBED_TYPES = {MsgType.ORDER_MASS_STATUS_REQUEST: Capability.MASS_STATUS,
                 MsgType.TRADE_CAPTURE_REPORT_REQUEST: Capability.TRADE_CAPTURE,
                 MsgType.SECURITY_LIST_REQUEST: Capability.MARKET_DATA,
                 MsgType.MARKET_DATA_REQUEST: Capability.MARKET_DATA}


class VenueRefused(VenueUnavailable):
    """The venue answered a request with a reject (35=j, 35=3, 35=Y): it will not serve it."""


class NoAnswer(VenueUnavailable):
    """The venue did not answer a request in time."""


@dataclass(slots=True)
class _Pending:
    """A request waiting for its answer(s)."""

    future: asyncio.Future[list[FixMessage]]
    msg_type: str = ""
    items: list[FixMessage] = field(default_factory=list)
    expected: int | None = None

    def add(self, msg: FixMessage, total: int | None, last: bool) -> None:
        if self.future.done():
            return
        if total is not None:
            self.expected = total
        if self.expected != 0:
            self.items.append(msg)
        if last or (self.expected is not None and len(self.items) >= self.expected):
            self.future.set_result(self.items)


class FixVenue:
    """A Venue reached over FIX 4.4 at ``host:port``."""

    def __init__(self, host: str, port: int, *, name: str = "SIM", data_dir: Path = Path("data"),
                 sender_comp_id: str = DEFAULT_CLIENT_COMP_ID,
                 target_comp_id: str | None = None, heartbeat_seconds: int = 5,
                 reconnect_seconds: int = 1, logon_timeout: float = 5.0,
                 request_timeout: float = 5.0, quote_buffer: int = 10_000,
                 log_messages: bool = False, username: str | None = None,
                 password: str | None = None, reset_seq: bool = False) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.logon_timeout = logon_timeout
        self.request_timeout = request_timeout
        data_dir = Path(data_dir)
        self.config = SessionConfig(
            sender_comp_id=sender_comp_id, target_comp_id=target_comp_id or name,
            store_dir=data_dir / STORE_DIR, heartbeat_seconds=heartbeat_seconds,
            reconnect_seconds=reconnect_seconds,
            log_dir=data_dir / "fix-log" if log_messages else None, reset_on_logon=reset_seq)
        self.capabilities = Capabilities(name)
        self._logon_fields = [(553, username)] if username else []
        if password:
            self._logon_fields.append((554, password))
        self._logon_sent_at: float | None = None
        self._logon_attempts = 0
        self._diagnosis: asyncio.Task[None] | None = None
        self._refusal: str | None = None  # the venue's Text on a Logout before any logon
        self._problem: logon.LogonProblem | None = None
        self._said: str | None = None
        self.logons = 0
        self.duplicates_dropped = 0
        self.last_logout_reason: str | None = None
        self._quote_buffer = quote_buffer
        self._sid = self.config.session_id()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._initiator: Any = None
        self._sender: ThreadPoolExecutor | None = None
        self._logged_on = asyncio.Event()
        self._logged_out = asyncio.Event()
        self._logged_out.set()
        self._reports: asyncio.Queue[ExecutionReport] = asyncio.Queue()
        self._quote_streams: weakref.WeakSet[Stream[Quote]] = weakref.WeakSet()
        self._quotes: dict[str, Quote] = {}  # as last refreshed, stream by stream
        self._published: dict[str, Quote] = {}  # as last given to quotes() subscribers
        self._quote_keys: dict[str, _QuoteKey] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._known: OrderedDict[str, tuple[str, Side]] = OrderedDict()
        self._pending: dict[str, _Pending] = {}
        self._status_waiters: dict[str, str] = {}  # client order id -> status request id
        self._ids = itertools.count(1)
        self._id_prefix = uuid.uuid4().hex[:8]
        self._subscriber: asyncio.Task[None] | None = None
        self._md_streams: dict[str, tuple[str, str]] = {}  # MDReqID -> (symbol, MDEntryType)
        self._md_timers: dict[str, asyncio.TimerHandle] = {}

    @classmethod
    def from_address(cls, address: str, settings: Settings,
                     name: str | None = None) -> FixVenue:
        """``HOST:PORT`` (``[v6]:PORT`` too); the venue name (also the TargetCompID: the
        settings' ``venue_target_comp_id`` applies to the venue named ``venue_name`` only) and
        the data dir (the FIX store goes to ``<data dir>/fix-store``) from the settings, with the
        session's CompIDs, heartbeat, sequence reset, Username (``venue_username``) and Password
        (the spec's ``EXCHANGE_API_KEY``)."""
        host, port = check_address(address)
        name = name or settings.venue_name
        target = settings.venue_target_comp_id if name == settings.venue_name else None
        return cls(host, port, name=name,
                   data_dir=Path(settings.data_dir),
                   sender_comp_id=settings.venue_sender_comp_id,
                   target_comp_id=target or name,
                   heartbeat_seconds=settings.venue_heartbeat,
                   logon_timeout=settings.venue_logon_timeout,
                   request_timeout=settings.venue_request_timeout,
                   username=settings.venue_username,
                   password=settings.exchange_api_key or None,
                   reset_seq=settings.venue_reset_seq)

    # ---- state --------------------------------------------------------------------------------

    @property
    def logged_on(self) -> bool:
        return self._logged_on.is_set()

    @property
    def connected(self) -> bool:
        return self.logged_on

    def session_status(self) -> SessionStatus:
        if self.logged_on:
            return SessionStatus("connected")
        state = "disconnected" if self._initiator is None else "connecting"
        if self._problem is not None:
            return SessionStatus(state, self._problem.problem, self._problem.hint)
        if self.last_logout_reason:
            return SessionStatus(state, f"logged out: {self.last_logout_reason}",
                                 "ordex reconnects by itself")
        return SessionStatus(state)

    def _context(self) -> logon.LogonContext:
        return logon.LogonContext(f"{self.host}:{self.port}", self.config.sender_comp_id,
                                  self.config.target_comp_id, str(self.config.seqnums_file()))

    def _explain(self, problem: logon.LogonProblem) -> None:
        """Keep the reason the session is not up; logged once per kind of reason. A silent drop
        does not hide what the venue said on an earlier attempt."""
        if (self._problem is not None and self._problem.has_venue_text
                and not problem.has_venue_text):
            return
        self._problem = problem
        if self._said != problem.kind:
            self._said = problem.kind
            log.error("FIX venue %s: %s; %s", self.name, problem.problem, problem.hint)

    async def wait_logged_on(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for the session to be logged on."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._logged_on.wait(), seconds)
        return self.logged_on

    def seqnums(self) -> tuple[int, int] | None:
        """Next sender and next target sequence numbers (live session, else the FileStore)."""
        session = fix.Session.lookupSession(self._sid)
        if session is not None:
            return int(session.getExpectedSenderNum()), int(session.getExpectedTargetNum())
        return read_seqnums(self.config.seqnums_file())

    # ---- Venue protocol -----------------------------------------------------------------------

    async def start(self) -> None:
        if self._initiator is not None:
            return
        if fix.Session.lookupSession(self._sid) is not None:
            # QuickFIX keeps one registry of sessions per process: a second one with the same
            # id would corrupt it.
            raise RuntimeError(f"FIX session {self._sid.toString()} already runs in this process")
        self._loop = asyncio.get_running_loop()
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"fix-{self.name}")
        self._initiator = await start_socket(
            fix.SocketInitiator, self, self.config,
            initiator_settings(self.config, self.host, self.port))
        # A QuickFIX thread still running when the interpreter shuts down crashes it.
        atexit.register(self._stop_at_exit)
        if not await self.wait_logged_on(self.logon_timeout):
            if self._logon_attempts == 0:
                self._explain(logon.unreachable(self._context()))
            log.warning("FIX venue %s at %s:%d not logged on after %.1f s; retrying every %d s",
                        self.name, self.host, self.port, self.logon_timeout,
                        self.config.reconnect_seconds)

    async def stop(self) -> None:
        initiator, self._initiator = self._initiator, None
        if initiator is None:
            return
        for task in (self._subscriber, self._diagnosis):
            if task is not None:
                task.cancel()
        self._subscriber = self._diagnosis = None
        for timer in self._md_timers.values():
            timer.cancel()
        self._md_timers.clear()
        session = fix.Session.lookupSession(self._sid)
        if session is not None and session.isLoggedOn():
            self._logged_out.clear()
            await self._in_sender(session.logout, "ordex stopping")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._logged_out.wait(), 2.0)
        await asyncio.to_thread(initiator.stop, True)
        atexit.unregister(self._stop_at_exit)
        del initiator
        self._set_logged_out("stopped")
        if self._sender is not None:
            self._sender.shutdown(wait=False)
            self._sender = None

    def _stop_at_exit(self) -> None:
        initiator, self._initiator = self._initiator, None
        if initiator is not None:
            initiator.stop(True)

    async def submit(self, order: NewOrder) -> None:
        self._remember(order.client_order_id, order.symbol, order.side)
        await self._send(m.new_order_single(order))

    async def submit_many(self, orders: list[NewOrder]) -> list[VenueUnavailable | None]:
        outcomes: list[VenueUnavailable | None] = []
        for order in orders:
            try:
                await self.submit(order)
                outcomes.append(None)
            except VenueUnavailable as exc:
                outcomes.append(exc)
        return outcomes

    async def cancel(self, client_order_id: str) -> None:
        symbol, side = self._known.get(client_order_id, (m.NOT_APPLICABLE, Side.BUY))
        cancel_id = f"{client_order_id}.cxl.{self._new_id()}"
        await self._send(m.order_cancel_request(cancel_id, client_order_id, symbol, side))

    async def query(self, client_order_id: str) -> VenueOrder | None:
        symbol, side = self._known.get(client_order_id, (m.NOT_APPLICABLE, Side.BUY))
        request_id = self._new_id()
        self._status_waiters[client_order_id] = request_id
        try:
            answers = await self._request(
                request_id, m.order_status_request(request_id, client_order_id, symbol, side))
        finally:
            if self._status_waiters.get(client_order_id) == request_id:
                del self._status_waiters[client_order_id]
        return m.parse_order_status(answers[0], self.name) if answers else None

    async def open_orders(self) -> list[VenueOrder]:
        request_id = self._new_id()
        answers = await self._request(request_id, m.order_mass_status_request(request_id))
        orders = [m.parse_order_status(a, self.name) for a in answers]
        return [o for o in orders if o is not None]

    async def fills_since(self, since: datetime) -> list[ExecutionReport]:
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        request_id = self._new_id()
        answers = await self._request(request_id, m.trade_capture_request(request_id, since))
        fills = [m.parse_trade_capture_report(a, self.name) for a in answers]
        return [f for f in fills if f.timestamp >= since]

    def reports(self) -> AsyncIterator[ExecutionReport]:
        """Every report, in order; all calls share one queue, so read from one consumer."""
        return Stream(self._reports)

    def quotes(self) -> AsyncIterator[Quote]:
        """The last quote of every symbol, then one per change. Each call is a new subscriber
        (until it is dropped); a slow one loses its oldest quotes."""
        stream: Stream[Quote] = Stream(asyncio.Queue(self._quote_buffer))
        for quote in self._published.values():
            stream.offer(quote)
        self._quote_streams.add(stream)
        return stream

    # ---- from QuickFIX (on the loop) ----------------------------------------------------------

    def on_logon(self) -> None:
        self.logons += 1
        self._logged_out.clear()
        self._logged_on.set()
        self._problem = self._refusal = self._said = None
        self.last_logout_reason = None
        log.info("FIX venue %s logged on (%s)", self.name, self._sid.toString())
        if self.config.reset_on_logon and self._sender is not None:
            # Reset once, at start-up: a later reconnect resends what was missed instead.
            self._sender.submit(self._keep_sequence)
        if self._subscriber is None or self._subscriber.done():
            self.capabilities.probing()
            self._subscriber = asyncio.get_running_loop().create_task(
                self._learn(), name=f"fix-{self.name}-capabilities")

    async def _diagnose_drop(self, waited: float) -> None:
        """The connection closed with no word from the venue: QuickFIX reports a refused
        connection the same way, so find out whether anything listens at the address."""
        try:
            async with asyncio.timeout(2.0):
                _, writer = await asyncio.open_connection(self.host, self.port)
        except (OSError, TimeoutError):
            if not self.logged_on:
                self._explain(logon.unreachable(self._context()))
            return
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        if not self.logged_on:
            self._explain(logon.dropped(waited, _LOGON_TIMEOUT, self._context()))

    def _keep_sequence(self) -> None:
        session = fix.Session.lookupSession(self._sid)
        if session is not None:
            session.setResetOnLogon(False)

    def on_logon_sent(self) -> None:
        self._logon_sent_at = asyncio.get_running_loop().time()
        self._logon_attempts += 1
        self._refusal = None

    def logon_fields(self) -> list[tuple[int, str]]:
        return self._logon_fields

    def check_logon(self, raw: str) -> str | None:
        return None  # the venue's logon answer: nothing to check at this end

    def on_logout(self) -> None:
        if self.logged_on and self._initiator is not None:
            log.warning("FIX venue %s logged out%s", self.name,
                        f": {self.last_logout_reason}" if self.last_logout_reason else "")
            if self.last_logout_reason:
                # Some venues accept the logon, then log out at once to refuse it.
                problem = logon.refused(self.last_logout_reason, self._context())
                if problem.kind != "refused":
                    self._explain(problem)
        elif self._initiator is not None and self._logon_sent_at is not None:
            if self._refusal:
                self._explain(logon.refused(self._refusal, self._context()))
            elif self._diagnosis is None or self._diagnosis.done():
                waited = asyncio.get_running_loop().time() - self._logon_sent_at
                self._diagnosis = asyncio.get_running_loop().create_task(
                    self._diagnose_drop(waited), name=f"fix-{self.name}-logon-diagnosis")
        self._logon_sent_at = None
        self._set_logged_out("the FIX session logged out")

    def on_admin(self, raw: str) -> None:
        try:
            msg = m.parse(raw)
        except FixFormatError:
            return
        text = msg.get(Tag.TEXT)
        if msg.msg_type == "5":
            self.last_logout_reason = text
            if not self.logged_on:
                self._refusal = text
        elif msg.msg_type == "3":
            ref_type = msg.get(Tag.REF_MSG_TYPE)
            log.warning("FIX venue %s rejected message %s (35=%s): %s", self.name,
                        msg.get(Tag.REF_SEQ_NUM), ref_type, text)
            if ref_type:
                self._fail_type(ref_type, f"35=3 session-level Reject: {text or 'no reason'}")

    def on_session_reject_sent(self, raw: str) -> None:
        with contextlib.suppress(FixFormatError):
            msg = m.parse(raw)
            log.warning("FIX venue %s: QuickFIX refused its message %s (35=%s): %s tag %s",
                        self.name, msg.get(Tag.REF_SEQ_NUM), msg.get(Tag.REF_MSG_TYPE),
                        msg.get(Tag.TEXT), msg.get(371))

    def on_message(self, raw: str) -> None:
        try:
            msg = m.parse(raw)
            self._dispatch(msg)
        except FixFormatError as exc:
            log.warning("FIX venue %s sent a message ordex cannot read: %s", self.name, exc)
        except Exception:
            log.exception("handling a message from FIX venue %s failed", self.name)

    def _dispatch(self, msg: FixMessage) -> None:
        match msg.msg_type:
            case MsgType.EXECUTION_REPORT:
                if msg.get(Tag.EXEC_TYPE) == ExecType.ORDER_STATUS:
                    self._on_status(msg)
                    return
                report = m.parse_execution_report(msg, self.name)
                if report is not None:
                    self._deliver(report)
            case MsgType.ORDER_CANCEL_REJECT:
                original = msg.get(Tag.ORIG_CL_ORD_ID) or ""
                symbol, side = self._known.get(original, ("", Side.BUY))
                self._deliver(m.parse_cancel_reject(msg, self.name, symbol, side))
            case MsgType.MARKET_DATA_SNAPSHOT:
                if not msg.poss_dup:  # a resent quote is stale
                    self._on_market_data(m.parse_market_data_snapshot(msg))
            case MsgType.SECURITY_LIST:
                total = msg.get(Tag.TOT_NO_RELATED_SYM)
                self._answer(msg.get(Tag.SECURITY_REQ_ID), msg, int(total) if total else None,
                             msg.get(Tag.LAST_FRAGMENT) != "N")
            case MsgType.TRADE_CAPTURE_REPORT_REQUEST_ACK:
                request_id = msg.get(Tag.TRADE_REQUEST_ID)
                if msg.get(Tag.TRADE_REQUEST_RESULT) not in (None, "0") or \
                        msg.get(Tag.TRADE_REQUEST_STATUS) == "2":
                    why = msg.get(Tag.TEXT) or msg.get(Tag.TRADE_REQUEST_RESULT)
                    self._fail(request_id, f"trade capture request rejected: {why}")
                    return
                total = msg.get(Tag.TOT_NUM_TRADE_REPORTS)
                if total is not None and int(total) == 0:
                    self._answer(request_id, msg, 0, True)
                elif request_id in self._pending and total is not None:
                    self._pending[request_id].expected = int(total)
            case MsgType.TRADE_CAPTURE_REPORT:
                total = msg.get(Tag.TOT_NUM_TRADE_REPORTS)
                self._answer(msg.get(Tag.TRADE_REQUEST_ID), msg,
                             int(total) if total else None,
                             msg.get(Tag.LAST_RPT_REQUESTED) == "Y")
            case MsgType.BUSINESS_MESSAGE_REJECT:
                ref = msg.get(Tag.BUSINESS_REJECT_REF_ID)
                ref_type = msg.get(Tag.REF_MSG_TYPE) or ""
                text = f"35=j BusinessMessageReject: {msg.get(Tag.TEXT) or 'no reason given'}"
                if ref in self._pending:
                    self._fail(ref, text)
                elif not self._fail_type(ref_type, text):
                    log.warning("FIX venue %s rejected a 35=%s: %s", self.name, ref_type, text)
                if ref_type == MsgType.MARKET_DATA_REQUEST:
                    self.capabilities.learn(Capability.MARKET_DATA, False, text)
            case MsgType.MARKET_DATA_REQUEST_REJECT:
                text = msg.get(Tag.TEXT) or f"MDReqRejReason {msg.get(Tag.MD_REQ_REJ_REASON)}"
                self.capabilities.learn(Capability.MARKET_DATA, False,
                                        f"35=Y MarketDataRequestReject: {text}")
            case _:
                log.debug("FIX venue %s: ignoring 35=%s", self.name, msg.msg_type)

    def _on_status(self, msg: FixMessage) -> None:
        mass = msg.get(Tag.MASS_STATUS_REQ_ID)
        if mass is not None:
            total = msg.get(Tag.TOT_NUM_REPORTS)
            self._answer(mass, msg, int(total) if total else None,
                         msg.get(Tag.LAST_RPT_REQUESTED) == "Y")
            return
        request_id = msg.get(Tag.ORD_STATUS_REQ_ID)
        if request_id is None:  # a venue that does not echo OrdStatusReqID: match the order
            request_id = self._status_waiters.get(msg.get(Tag.CL_ORD_ID) or "")
        self._answer(request_id, msg, None, True)

    def _deliver(self, report: ExecutionReport) -> None:
        if report.exec_id in self._seen:
            self.duplicates_dropped += 1
            return
        self._seen[report.exec_id] = None
        if len(self._seen) > _SEEN_EXEC_IDS:
            self._seen.popitem(last=False)
        self._reports.put_nowait(report)

    def _on_market_data(self, entry: m.MarketDataEntry) -> None:
        """One stream's refresh updates the symbol's quote. The venue refreshes a symbol's
        streams together, bid, offer, then trade, so the quote is published at the trade refresh
        (whole, never half updated); a bid or offer refresh not followed by a trade refresh is
        published after ``_MD_SETTLE`` seconds."""
        stream = self._md_streams.get(entry.request_id)
        entry_type = entry.entry_type or (stream[1] if stream else None)
        if entry_type not in m.ENTRY_TYPES:
            return
        symbol = entry.symbol
        old = self._quotes.get(symbol)
        bid, ask, last = (old.bid, old.ask, old.last) if old else (None, None, None)
        if entry_type == m.BID:
            bid = entry.price
        elif entry_type == m.OFFER:
            ask = entry.price
        else:
            last = entry.price
        halted = entry.halted if entry.halted is not None else bool(old and old.halted)
        self._quotes[symbol] = Quote(symbol=symbol, bid=bid, ask=ask, last=last,
                                     timestamp=entry.timestamp, halted=halted)
        timer = self._md_timers.pop(symbol, None)
        if timer is not None:
            timer.cancel()
        if entry_type == m.TRADE:
            self._publish_quote(symbol)
        else:
            loop = asyncio.get_running_loop()
            self._md_timers[symbol] = loop.call_later(_MD_SETTLE, self._publish_quote, symbol)

    def _publish_quote(self, symbol: str) -> None:
        self._md_timers.pop(symbol, None)
        quote = self._quotes.get(symbol)
        if quote is None:
            return
        key = (quote.bid, quote.ask, quote.last, quote.halted)
        if self._quote_keys.get(symbol) == key:
            return
        self._quote_keys[symbol] = key
        self._published[symbol] = quote
        for stream in list(self._quote_streams):
            stream.offer(quote)

    def _answer(self, request_id: str | None, msg: FixMessage, total: int | None,
                last: bool) -> None:
        pending = self._pending.get(request_id or "")
        if pending is not None:
            pending.add(msg, total, last)

    def _fail(self, request_id: str | None, reason: str) -> None:
        pending = self._pending.get(request_id or "")
        if pending is not None and not pending.future.done():
            pending.future.set_exception(VenueRefused(reason))

    def _fail_type(self, msg_type: str, reason: str) -> bool:
        """A reject that names only the message type: every request of that type waiting."""
        waiting = [rid for rid, p in self._pending.items() if p.msg_type == msg_type]
        for request_id in waiting:
            self._fail(request_id, reason)
        return bool(waiting)

    def _set_logged_out(self, reason: str) -> None:
        self._logged_on.clear()
        self._logged_out.set()
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(VenueUnavailable(f"{self.name}: {reason}"))

    # ---- sending ------------------------------------------------------------------------------

    async def _send(self, *msgs: FixMessage) -> None:
        if not self.logged_on or self._sender is None:
            raise VenueUnavailable(f"{self.name} is not connected (FIX session not logged on)")
        if not await self._in_sender(self._send_now, msgs):
            raise VenueUnavailable(f"{self.name} is not connected (FIX session not logged on)")

    def _send_now(self, msgs: tuple[FixMessage, ...]) -> bool:
        """On the sender thread. A message may still be stored and resent by QuickFIX if the
        connection drops right after the check: delivery is at least once."""
        session = fix.Session.lookupSession(self._sid)
        if session is None or not session.isLoggedOn():
            return False
        return all([bool(session.send(msg.to_quickfix())) for msg in msgs])

    async def _in_sender(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._sender is None:
            raise VenueUnavailable(f"{self.name} is stopped")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._sender, fn, *args)

    async def _request(self, request_id: str, msg: FixMessage) -> list[FixMessage]:
        """Send a request and wait for its answers (VenueUnavailable on timeout)."""
        loop = asyncio.get_running_loop()
        pending = _Pending(loop.create_future(), msg.msg_type)
        self._pending[request_id] = pending
        try:
            await self._send(msg)
            return await asyncio.wait_for(pending.future, self.request_timeout)
        except TimeoutError:
            raise NoAnswer(
                f"no answer to 35={msg.msg_type} within {self.request_timeout:g} s") from None
        finally:
            self._pending.pop(request_id, None)
            if pending.future.done() and not pending.future.cancelled():
                pending.future.exception()  # retrieved: failed while the send was refused

    async def _learn(self) -> None:
        """After a logon: ask for each optional capability not learnt yet, and subscribe to
        market data if the venue has it."""
        try:
            await asyncio.gather(
                self._probe(Capability.MASS_STATUS, self.open_orders),
                self._probe(Capability.TRADE_CAPTURE,
                            lambda: self.fills_since(datetime.now(UTC))),
                self._subscribe_market_data())
        finally:
            self.capabilities.probed()

    async def _probe(self, capability: Capability, ask: Callable[[], Any]) -> None:
        if self.capabilities.state(capability).supported is not None:
            return
        try:
            await ask()
        except (VenueRefused, NoAnswer) as exc:
            self.capabilities.learn(capability, False, str(exc))
        except VenueUnavailable:
            return  # the session dropped: asked again after the next logon
        except FixFormatError as exc:
            self.capabilities.learn(capability, False, f"unreadable answer: {exc}")
        else:
            self.capabilities.learn(capability, True, "answered")

    async def _subscribe_market_data(self) -> None:
        """The security list, then one market data stream per symbol and entry type (bid,
        offer, trade)."""
        if self.capabilities.state(Capability.MARKET_DATA).supported is False:
            return
        try:
            request_id = self._new_id()
            try:
                answers = await self._request(request_id, m.security_list_request(request_id))
            except (VenueRefused, NoAnswer) as exc:
                self.capabilities.learn(Capability.MARKET_DATA, False, str(exc))
                return
            symbols = [s for answer in answers for s in m.parse_symbols(answer)]
            self.capabilities.learn(Capability.MARKET_DATA, True,
                                    f"answered the security list ({len(symbols)} symbols)")
            self._md_streams.clear()
            requests: list[FixMessage] = []
            for symbol in symbols:
                for entry_type in m.ENTRY_TYPES:
                    md_request_id = self._new_id()
                    self._md_streams[md_request_id] = (symbol, entry_type)
                    requests.append(m.market_data_request(md_request_id, symbol, entry_type))
            await self._send(*requests)
        except VenueUnavailable as exc:
            log.warning("FIX venue %s: no market data subscription: %s", self.name, exc)
        except FixFormatError as exc:
            log.warning("FIX venue %s: unreadable security list: %s", self.name, exc)

    def _new_id(self) -> str:
        return f"{self._id_prefix}-{next(self._ids)}"

    def _remember(self, client_order_id: str, symbol: str, side: Side) -> None:
        self._known[client_order_id] = (symbol, side)
        if len(self._known) > _KNOWN_ORDERS:
            self._known.popitem(last=False)
