"""A FIX 4.4 venue that supports only the core order flow, built on fixcore (a pure-Python FIX
engine: its own session layer, store and asyncio transport; not QuickFIX, not ordex's code).

Session: Logon, Heartbeat, TestRequest, ResendRequest, SequenceReset and Logout, as fixcore does
them. It keeps no copy of the messages it sent (``PersistMessages=N``): a ResendRequest is
answered with SequenceReset-GapFill, and a report made while the client is away is not queued
for it (``late`` keeps it, for a test to deliver on purpose). Such a client learns what happened
meanwhile only by asking for each order's status.

Application: NewOrderSingle (D), OrderCancelRequest (F), OrderCancelReplaceRequest (G) and
OrderStatusRequest (H) in; ExecutionReport (8) and OrderCancelReject (9) out. Anything else
(OrderMassStatusRequest AF, TradeCaptureReportRequest AD, SecurityListRequest x,
MarketDataRequest V...) gets a BusinessMessageReject (j), BusinessRejectReason 3.

Matching: one price per symbol (``set_price``). A market order fills in full at it; a limit
order fills at it if it crosses, else rests until ``set_price`` moves through it; ``fill()``
fills part of an order at a chosen price. Exec ids and order ids are random, unique across
restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from fixcore import Application, SessionID
from fixcore.message.message import Message
from fixcore.session.session import Session
from fixcore.session.session_settings import SessionSettings
from fixcore.transport.acceptor import SocketAcceptor

log = logging.getLogger("tests.core_venue")

ZERO = Decimal(0)
_ID_TAGS = (790, 584, 568, 320, 262, 11)  # request ids a reject names as BusinessRejectRefID


@dataclass
class CoreOrder:
    cl_ord_id: str
    order_id: str
    symbol: str
    side: str  # "1" buy, "2" sell
    quantity: Decimal
    ord_type: str  # "1" market, "2" limit
    price: Decimal | None
    tif: str
    cum: Decimal = ZERO
    notional: Decimal = ZERO
    status: str = "0"  # OrdStatus
    fills: list[tuple[Decimal, Decimal]] = field(default_factory=list)

    @property
    def leaves(self) -> Decimal:
        return self.quantity - self.cum if self.status in ("0", "1") else ZERO

    @property
    def avg(self) -> Decimal:
        return self.notional / self.cum if self.cum else ZERO

    @property
    def open(self) -> bool:
        return self.status in ("0", "1")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


def _fmt(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


class CoreVenue(Application):
    """Start with ``await start()``, always ``await stop()``."""

    def __init__(self, data_dir: Path, *, port: int, name: str = "CORE",
                 client_comp_id: str = "ORDEX", prices: dict[str, Decimal] | None = None) -> None:
        self.name = name
        self.port = port
        self.prices = dict(prices or {})
        self.orders: dict[str, CoreOrder] = {}
        self.received: list[str] = []  # MsgType of every application message received
        self.rejected: list[str] = []  # MsgType of every one refused with 35=j
        self.late: list[Message] = []  # reports made while the client was away
        self.logons = 0
        self._sid = SessionID("FIX.4.4", name, client_comp_id)
        settings = SessionSettings()
        for key, value in {"ConnectionType": "acceptor", "SocketAcceptHost": "127.0.0.1",
                           "SocketAcceptPort": str(port), "HeartBtInt": "1",
                           "FileStorePath": str(data_dir / "store"), "PersistMessages": "N",
                           "FileLogPath": str(data_dir / "log"),
                           "ResetOnLogon": "N", "ResetOnLogout": "N",
                           "ResetOnDisconnect": "N", "UseDataDictionary": "N"}.items():
            settings.set_default(key, value)
        settings.set_session(self._sid, {})
        self._acceptor = SocketAcceptor(settings, self)
        self._out: asyncio.Queue[Message] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None
        self._logged_on = asyncio.Event()

    # ---- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self._acceptor.start()
        self._sender = asyncio.create_task(self._send_loop(), name=f"{self.name}-sender")

    async def stop(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            self._sender = None
        await self._acceptor.stop()

    @property
    def session(self) -> Session:
        return self._acceptor.sessions[self._sid]

    @property
    def logged_on(self) -> bool:
        return self.session.is_logged_on

    async def wait_logged_on(self, seconds: float = 10.0) -> None:
        async with asyncio.timeout(seconds):
            while not self.logged_on:  # noqa: ASYNC110
                await asyncio.sleep(0.02)

    async def wait_logged_out(self, seconds: float = 10.0) -> None:
        async with asyncio.timeout(seconds):
            while self.logged_on:  # noqa: ASYNC110
                await asyncio.sleep(0.02)

    # ---- fixcore callbacks (on the loop) ------------------------------------------------------

    def on_logon(self, session_id: SessionID) -> None:
        self.logons += 1

    def from_app(self, message: Message, session_id: SessionID) -> None:
        msg_type = message.msg_type
        self.received.append(msg_type)
        handler = {"D": self._on_new_order, "F": self._on_cancel, "G": self._on_replace,
                   "H": self._on_status}.get(msg_type)
        if handler is None:
            self._business_reject(message, "3", f"unsupported message type {msg_type}")
            return
        try:
            handler(message)
        except (KeyError, ValueError, ArithmeticError) as exc:
            self._business_reject(message, "5", f"cannot read 35={msg_type}: {exc!r}")

    # ---- the exchange -------------------------------------------------------------------------

    def set_price(self, symbol: str, price: Decimal) -> None:
        """Move the market: resting limits it crosses fill at their limit price."""
        self.prices[symbol] = price
        for order in list(self.orders.values()):
            if order.open and order.symbol == symbol and self._crosses(order, price):
                assert order.price is not None
                self._trade(order, order.quantity - order.cum, order.price)

    def fill(self, cl_ord_id: str, quantity: Decimal, price: Decimal) -> None:
        self._trade(self.orders[cl_ord_id], quantity, price)

    async def deliver_late(self) -> None:
        """Send the reports made while the client was away (as a venue that queues would)."""
        late, self.late = self.late, []
        for msg in late:
            await self.session.send_app(msg)

    def _crosses(self, order: CoreOrder, price: Decimal) -> bool:
        if order.price is None:
            return True
        return price <= order.price if order.side == "1" else price >= order.price

    def _trade(self, order: CoreOrder, quantity: Decimal, price: Decimal) -> None:
        order.cum += quantity
        order.notional += quantity * price
        order.fills.append((quantity, price))
        order.status = "2" if order.cum >= order.quantity else "1"
        self._report(order, "F", last=(quantity, price))

    def _on_new_order(self, msg: Message) -> None:
        cl_ord_id = msg[11]
        if cl_ord_id in self.orders:
            if msg.header.get_or(43) == "Y":
                return  # a resend of an order already received
            self._reject_order(msg, "6", f"duplicate ClOrdID {cl_ord_id}")
            return
        symbol = msg[55]
        if symbol not in self.prices:
            self._reject_order(msg, "1", f"unknown symbol {symbol}")
            return
        order = CoreOrder(cl_ord_id, f"{self.name}-o{uuid.uuid4().hex[:12]}", symbol, msg[54],
                          Decimal(msg[38]), msg.get(40, "1"),
                          Decimal(msg[44]) if 44 in msg else None, msg.get(59, "0"))
        self.orders[cl_ord_id] = order
        self._report(order, "0")
        price = self.prices[symbol]
        if self._crosses(order, price):
            self._trade(order, order.quantity, price)
        elif order.tif in ("3", "4"):  # IOC, FOK: nothing rests
            order.status = "4"
            self._report(order, "4", text="nothing to match at the limit")

    def _on_cancel(self, msg: Message) -> None:
        order = self.orders.get(msg[41])
        if order is None or not order.open:
            self._cancel_reject(msg, order, "1" if order is None else "0")
            return
        order.status = "4"
        self._report(order, "4", cl_ord_id=msg[11], orig=order.cl_ord_id)

    def _on_replace(self, msg: Message) -> None:
        order = self.orders.get(msg[41])
        if order is None or not order.open:
            self._cancel_reject(msg, order, "1" if order is None else "0", response_to="2")
            return
        del self.orders[order.cl_ord_id]
        orig, order.cl_ord_id = order.cl_ord_id, msg[11]
        order.quantity = Decimal(msg.get(38, str(order.quantity)))
        if 44 in msg:
            order.price = Decimal(msg[44])
        self.orders[order.cl_ord_id] = order
        self._report(order, "5", orig=orig)
        if self._crosses(order, self.prices[order.symbol]):
            self._trade(order, order.quantity - order.cum, self.prices[order.symbol])

    def _on_status(self, msg: Message) -> None:
        order = self.orders.get(msg[11])
        request_id = msg.get(790)
        if order is None:
            out = self._message("8")
            for tag, value in ((37, "UNKNOWN"), (11, msg[11]), (17, uuid.uuid4().hex),
                               (150, "I"), (39, "8"), (103, "5"), (55, msg.get(55, "[N/A]")),
                               (54, msg.get(54, "1")), (151, "0"), (14, "0"), (6, "0"),
                               (58, "Unknown order"), (60, _now())):
                out.set_field(tag, value)
            if request_id:
                out.set_field(790, request_id)
            self._send(out)
            return
        self._report(order, "I", status_request=request_id)

    # ---- messages out -------------------------------------------------------------------------

    def _message(self, msg_type: str) -> Message:
        out = Message()
        out.header.set(35, msg_type)
        return out

    def _report(self, order: CoreOrder, exec_type: str, *, last: tuple[Decimal, Decimal] |
                None = None, cl_ord_id: str | None = None, orig: str | None = None,
                status_request: str | None = None, text: str | None = None) -> None:
        out = self._message("8")
        fields: list[tuple[int, str]] = [
            (37, order.order_id), (11, cl_ord_id or order.cl_ord_id),
            (17, f"{self.name}-x{uuid.uuid4().hex}"), (150, exec_type), (39, order.status),
            (55, order.symbol), (54, order.side), (38, _fmt(order.quantity)),
            (40, order.ord_type), (59, order.tif)]
        if orig:
            fields.append((41, orig))
        if order.price is not None:
            fields.append((44, _fmt(order.price)))
        if last is not None:
            fields += [(32, _fmt(last[0])), (31, _fmt(last[1])), (12, "0"), (13, "3")]
        fields += [(151, _fmt(order.leaves)), (14, _fmt(order.cum)), (6, _fmt(order.avg)),
                   (60, _now())]
        if status_request:
            fields.append((790, status_request))
        if text:
            fields.append((58, text))
        for tag, value in fields:
            out.set_field(tag, value)
        self._send(out, keep_late=exec_type != "I")

    def _reject_order(self, msg: Message, reason: str, text: str) -> None:
        out = self._message("8")
        for tag, value in ((37, "NONE"), (11, msg[11]), (17, f"{self.name}-x{uuid.uuid4().hex}"),
                           (150, "8"), (39, "8"), (103, reason), (55, msg.get(55, "")),
                           (54, msg.get(54, "1")), (151, "0"), (14, "0"), (6, "0"),
                           (58, text), (60, _now())):
            out.set_field(tag, value)
        self._send(out)

    def _cancel_reject(self, msg: Message, order: CoreOrder | None, reason: str,
                       response_to: str = "1") -> None:
        out = self._message("9")
        for tag, value in ((37, order.order_id if order else "NONE"), (11, msg[11]),
                           (41, msg[41]), (39, order.status if order else "8"),
                           (434, response_to), (102, reason),
                           (58, "unknown order" if order is None else "too late to cancel"),
                           (60, _now())):
            out.set_field(tag, value)
        self._send(out)

    def _business_reject(self, msg: Message, reason: str, text: str) -> None:
        self.rejected.append(msg.msg_type)
        out = self._message("j")
        out.set_field(45, msg.header.get_or(34, "0"))
        out.set_field(372, msg.msg_type)
        ref = next((msg[t] for t in _ID_TAGS if t in msg), None)
        if ref:
            out.set_field(379, ref)
        out.set_field(380, reason)
        out.set_field(58, text)
        self._send(out)

    def _send(self, msg: Message, keep_late: bool = False) -> None:
        if not self.logged_on:
            if keep_late:
                self.late.append(msg)
            return
        self._out.put_nowait(msg)

    async def _send_loop(self) -> None:
        """One sender, so that reports leave in the order they were made."""
        while True:
            msg = await self._out.get()
            try:
                await self.session.send_app(msg)
            except RuntimeError:  # logged out meanwhile: the report is not queued for it
                if msg.msg_type == "8" and msg.get(150) != "I":
                    self.late.append(msg)
