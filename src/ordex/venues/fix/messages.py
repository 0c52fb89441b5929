"""FIX 4.4 messages by tag number, and their mapping to and from the Venue protocol's types.

No data dictionary is used (QuickFIX runs with ``UseDataDictionary=N``), so messages are built
and read here by tag number. Only standard FIX 4.4 messages and tags are used; there are no
user-defined tags and no user-defined message types.

Messages (ordex -> venue / venue -> ordex):

=====  =============================  =========================================================
35=D   NewOrderSingle                 11 ClOrdID, 55 Symbol, 54 Side (1 buy, 2 sell),
                                      38 OrderQty, 40 OrdType (1 market, 2 limit), 44 Price,
                                      59 TimeInForce (0 day, 1 GTC, 3 IOC, 4 FOK), 60 TransactTime
35=F   OrderCancelRequest             11 ClOrdID (of the cancel request), 41 OrigClOrdID, 55, 54,
                                      60
35=H   OrderStatusRequest             790 OrdStatusReqID, 11 ClOrdID, 55, 54
35=AF  OrderMassStatusRequest         584 MassStatusReqID, 585 MassStatusReqType (7 all orders,
                                      1 one security with 55)
35=AD  TradeCaptureReportRequest      568 TradeRequestID, 569 TradeRequestType (0 all trades),
                                      263 SubscriptionRequestType (0 snapshot), 580 NoDates
                                      {75 TradeDate, 60 TransactTime}: one entry, the start
                                      ("since")
35=x   SecurityListRequest            320 SecurityReqID, 559 SecurityListRequestType (4 all)
35=V   MarketDataRequest              262 MDReqID, 263 (1 snapshot + updates, 2 unsubscribe),
                                      264 MarketDepth (1 top of book), 265 MDUpdateType (0 full),
                                      267 NoMDEntryTypes {269} and 146 NoRelatedSym {55}, one
                                      entry each
35=8   ExecutionReport                37 OrderID, 11 ClOrdID, 41 OrigClOrdID (on the answer to a
                                      cancel request), 17 ExecID, 150 ExecType, 39 OrdStatus,
                                      55, 54, 38, 40, 44, 59, 32 LastQty, 31 LastPx, 151 LeavesQty,
                                      14 CumQty, 6 AvgPx, 12 Commission with 13 CommType=3
                                      (absolute), 851 LastLiquidityInd (1 added = maker,
                                      2 removed = taker), 58 Text, 103 OrdRejReason, 60; and on
                                      status answers 790 OrdStatusReqID or 584 MassStatusReqID,
                                      911 TotNumReports, 912 LastRptRequested
35=9   OrderCancelReject              37, 11, 41, 39, 434 CxlRejResponseTo (1), 102 CxlRejReason
                                      (0 too late, 1 unknown order), 58, 60
35=AQ  TradeCaptureReportRequestAck   568, 569, 749 TradeRequestResult, 750 TradeRequestStatus,
                                      748 TotNumTradeReports, 58
35=AE  TradeCaptureReport             571 TradeReportID, 568, 748, 912, 150=F, 17 ExecID,
                                      39, 570 PreviouslyReported=Y, 55, 32, 31, 75 TradeDate, 60,
                                      552 NoSides {54, 37, 11, 12, 13}
35=y   SecurityList                   320, 322 SecurityResponseID, 560 SecurityRequestResult,
                                      393 TotNoRelatedSym, 893 LastFragment, 146 {55}: one
                                      message per symbol
35=W   MarketDataSnapshotFullRefresh  262, 55, 268 NoMDEntries (0 or 1) {269 MDEntryType (0 bid,
                                      1 offer, 2 trade), 270 MDEntryPx, 272 MDEntryDate,
                                      273 MDEntryTime, 276 QuoteCondition (A open, B closed: the
                                      symbol is halted)}
35=Y   MarketDataRequestReject        262, 281 MDReqRejReason, 58
35=j   BusinessMessageReject          45 RefSeqNum, 372 RefMsgType, 379 BusinessRejectRefID,
                                      380 BusinessRejectReason, 58
=====  =============================  =========================================================

Exec types: 0 new (ACK), F trade (FILL), 4 canceled, 8 rejected, C expired, I order status (not a
report: the answer to 35=H / 35=AF). An unknown order asked with 35=H is answered by an
ExecutionReport with ExecType I, OrdStatus 8, OrderID ``NONE`` and Text ``unknown order``. An
empty mass status answer is one ExecutionReport with TotNumReports 0.

Decimal prices, quantities and fees go on the wire as plain decimal strings (never exponents);
timestamps are UTC ``YYYYMMDD-HH:MM:SS.ffffff``.

Repeating groups, and why every group here has one entry: without a data dictionary QuickFIX
1.15 parses a received message with its body fields sorted by tag number, then its validation
rejects the message at session level ("Tag appears more than once", 35=3) as soon as a tag
repeats -- that is, as soon as a repeating group has two entries. So nothing either end receives
may repeat a tag:

* a SecurityList is sent in fragments, one symbol each (TotNoRelatedSym 393, LastFragment 893);
* market data is one stream per (symbol, MDEntryType): a MarketDataRequest names one symbol and
  one entry type (0 bid, 1 offer, 2 trade), and each MarketDataSnapshotFullRefresh carries at most
  one entry (MarketDepth 1; none when that side of the book is empty);
* a TradeCaptureReportRequest has one NoDates entry (the start); a TradeCaptureReport one side.

All of that is plain FIX 4.4; a counterparty with a data dictionary reads it as usual.
``FixMessage.group`` rebuilds entries tag by tag, so it also reads a multi-entry group in wire
order (for instance in tests) as long as every entry has the same tags.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from ordex.domain.money import ZERO
from ordex.domain.orders import OrderType, Side, TimeInForce
from ordex.venues.base import (
    ExecutionReport,
    NewOrder,
    Quote,
    ReportKind,
    VenueOrder,
    VenueOrderState,
)

if TYPE_CHECKING:
    import quickfix

SOH = "\x01"
BEGIN_STRING = "FIX.4.4"
NONE_ID = "NONE"  # OrderID when the venue has no order to name
NOT_APPLICABLE = "[N/A]"  # Symbol when the requester does not know it (FIX convention)
UNKNOWN_ORDER = "unknown order"
NO_ORDERS = "no orders"


class Tag:
    """The standard FIX 4.4 tags used here."""

    AVG_PX = 6
    BEGIN_STRING = 8
    BODY_LENGTH = 9
    CHECKSUM = 10
    CL_ORD_ID = 11
    COMMISSION = 12
    COMM_TYPE = 13
    CUM_QTY = 14
    EXEC_ID = 17
    MSG_SEQ_NUM = 34
    MSG_TYPE = 35
    ORDER_ID = 37
    ORDER_QTY = 38
    ORD_STATUS = 39
    ORD_TYPE = 40
    ORIG_CL_ORD_ID = 41
    POSS_DUP_FLAG = 43
    PRICE = 44
    REF_SEQ_NUM = 45
    SENDER_COMP_ID = 49
    SENDING_TIME = 52
    SIDE = 54
    SYMBOL = 55
    TARGET_COMP_ID = 56
    TEXT = 58
    TIME_IN_FORCE = 59
    TRANSACT_TIME = 60
    TRADE_DATE = 75
    POSS_RESEND = 97
    CXL_REJ_REASON = 102
    ORD_REJ_REASON = 103
    ORIG_SENDING_TIME = 122
    NO_RELATED_SYM = 146
    EXEC_TYPE = 150
    LEAVES_QTY = 151
    MD_REQ_ID = 262
    SUBSCRIPTION_REQUEST_TYPE = 263
    MARKET_DEPTH = 264
    MD_UPDATE_TYPE = 265
    NO_MD_ENTRY_TYPES = 267
    NO_MD_ENTRIES = 268
    MD_ENTRY_TYPE = 269
    MD_ENTRY_PX = 270
    MD_ENTRY_DATE = 272
    MD_ENTRY_TIME = 273
    QUOTE_CONDITION = 276
    MD_REQ_REJ_REASON = 281
    SECURITY_REQ_ID = 320
    SECURITY_RESPONSE_ID = 322
    REF_MSG_TYPE = 372
    BUSINESS_REJECT_REF_ID = 379
    BUSINESS_REJECT_REASON = 380
    TOT_NO_RELATED_SYM = 393
    CXL_REJ_RESPONSE_TO = 434
    NO_SIDES = 552
    SECURITY_LIST_REQUEST_TYPE = 559
    SECURITY_REQUEST_RESULT = 560
    TRADE_REQUEST_ID = 568
    TRADE_REQUEST_TYPE = 569
    PREVIOUSLY_REPORTED = 570
    TRADE_REPORT_ID = 571
    NO_DATES = 580
    MASS_STATUS_REQ_ID = 584
    MASS_STATUS_REQ_TYPE = 585
    TOT_NUM_TRADE_REPORTS = 748
    TRADE_REQUEST_RESULT = 749
    TRADE_REQUEST_STATUS = 750
    ORD_STATUS_REQ_ID = 790
    LAST_LIQUIDITY_IND = 851
    LAST_FRAGMENT = 893
    TOT_NUM_REPORTS = 911
    LAST_RPT_REQUESTED = 912
    LAST_PX = 31
    LAST_QTY = 32


class MsgType:
    EXECUTION_REPORT = "8"
    ORDER_CANCEL_REJECT = "9"
    NEW_ORDER_SINGLE = "D"
    ORDER_CANCEL_REQUEST = "F"
    ORDER_STATUS_REQUEST = "H"
    MARKET_DATA_REQUEST = "V"
    MARKET_DATA_SNAPSHOT = "W"
    MARKET_DATA_REQUEST_REJECT = "Y"
    BUSINESS_MESSAGE_REJECT = "j"
    SECURITY_LIST_REQUEST = "x"
    SECURITY_LIST = "y"
    TRADE_CAPTURE_REPORT_REQUEST = "AD"
    TRADE_CAPTURE_REPORT = "AE"
    ORDER_MASS_STATUS_REQUEST = "AF"
    TRADE_CAPTURE_REPORT_REQUEST_ACK = "AQ"


class ExecType:
    NEW = "0"
    CANCELED = "4"
    REJECTED = "8"
    EXPIRED = "C"
    TRADE = "F"
    ORDER_STATUS = "I"


HEADER_TAGS = frozenset({8, 9, 34, 35, 43, 49, 50, 52, 56, 57, 97, 115, 116, 122, 128, 129, 142,
                         143, 144, 145, 212, 213, 347, 369, 627, 628, 629, 630})
TRAILER_TAGS = frozenset({10, 89, 93})

_SIDES = {Side.BUY: "1", Side.SELL: "2"}
_SIDES_BACK = {v: k for k, v in _SIDES.items()}
_ORD_TYPES = {OrderType.MARKET: "1", OrderType.LIMIT: "2"}
_ORD_TYPES_BACK = {v: k for k, v in _ORD_TYPES.items()}
_TIFS = {TimeInForce.DAY: "0", TimeInForce.GTC: "1", TimeInForce.IOC: "3", TimeInForce.FOK: "4"}
_TIFS_BACK = {v: k for k, v in _TIFS.items()}
_EXEC_TYPES = {ReportKind.ACK: ExecType.NEW, ReportKind.FILL: ExecType.TRADE,
               ReportKind.CANCELLED: ExecType.CANCELED, ReportKind.REJECTED: ExecType.REJECTED,
               ReportKind.EXPIRED: ExecType.EXPIRED}
# 1 and 2 are FIX 4.2's partial fill and fill, still sent by some venues.
_EXEC_TYPES_BACK = {**{v: k for k, v in _EXEC_TYPES.items()},
                    "1": ReportKind.FILL, "2": ReportKind.FILL}
_STATES = {VenueOrderState.FILLED: "2", VenueOrderState.CANCELLED: "4",
           VenueOrderState.REJECTED: "8", VenueOrderState.EXPIRED: "C"}
_STATES_BACK = {"0": VenueOrderState.OPEN, "1": VenueOrderState.OPEN,
                "A": VenueOrderState.OPEN, "6": VenueOrderState.OPEN,
                "E": VenueOrderState.OPEN, "5": VenueOrderState.OPEN,
                "2": VenueOrderState.FILLED, "4": VenueOrderState.CANCELLED,
                "8": VenueOrderState.REJECTED, "C": VenueOrderState.EXPIRED,
                "3": VenueOrderState.EXPIRED}
_LIQUIDITY = {"maker": "1", "taker": "2"}
_LIQUIDITY_BACK = {"1": "maker", "2": "taker"}


class FixFormatError(ValueError):
    """A message lacks a field it needs, or a field has a value that cannot be read."""


# ---- the message ------------------------------------------------------------------------------


@dataclass(slots=True)
class Group:
    """A repeating group to send: the count tag and the entries, each a list of ``(tag, value)``
    with the delimiter (the group's first field) first and the same tags in every entry."""

    count_tag: int
    entries: list[list[tuple[int, str]]]


@dataclass(slots=True)
class FixMessage:
    """One FIX message: its type, body fields (and groups) in order, and, on a received message,
    the header fields."""

    msg_type: str
    fields: list[tuple[int, str] | Group] = field(default_factory=list)
    header: dict[int, str] = field(default_factory=dict)

    # -- reading ------------------------------------------------------------------------------

    def get(self, tag: int) -> str | None:
        for item in self.fields:
            if isinstance(item, tuple) and item[0] == tag:
                return item[1]
        return None

    def values(self, tag: int) -> list[str]:
        return [item[1] for item in self.fields if isinstance(item, tuple) and item[0] == tag]

    def require(self, tag: int) -> str:
        value = self.get(tag)
        if value is None or value == "":
            raise FixFormatError(f"35={self.msg_type}: required tag {tag} missing")
        return value

    def group(self, count_tag: int, tags: Sequence[int]) -> list[dict[int, str]]:
        """The entries of a repeating group, each as ``{tag: value}`` for ``tags`` (the members
        read). Works on QuickFIX's tag-sorted body as on a message in wire order; a member tag
        must be in every entry or in none."""
        groups = [item for item in self.fields if isinstance(item, Group)]
        for g in groups:
            if g.count_tag == count_tag:
                return [{t: v for t, v in entry if t in tags} for entry in g.entries]
        text = self.get(count_tag)
        count = _int(text, count_tag) if text else 0
        entries: list[dict[int, str]] = [{} for _ in range(count)]
        for tag in tags:
            found = self.values(tag)
            if not found:
                continue
            if len(found) != count:
                raise FixFormatError(f"35={self.msg_type}: group {count_tag} has {count} entries "
                                     f"but tag {tag} appears {len(found)} times")
            for entry, value in zip(entries, found, strict=True):
                entry[tag] = value
        return entries

    @property
    def seq_num(self) -> int | None:
        text = self.header.get(Tag.MSG_SEQ_NUM)
        return int(text) if text and text.isdigit() else None

    @property
    def poss_dup(self) -> bool:
        return self.header.get(Tag.POSS_DUP_FLAG) == "Y"

    # -- writing ------------------------------------------------------------------------------

    def add(self, tag: int, value: object | None) -> FixMessage:
        """Append a field; None (or an empty string) is left out."""
        if value is None:
            return self
        text = _text(value)
        if text != "":
            self.fields.append((tag, text))
        return self

    def add_group(self, count_tag: int, entries: list[list[tuple[int, str]]]) -> FixMessage:
        self.fields.append(Group(count_tag, entries))
        return self

    def to_quickfix(self) -> quickfix.Message:
        """A QuickFIX message (header fields other than MsgType are QuickFIX's to set)."""
        import quickfix as fix

        message = fix.Message()
        message.getHeader().setField(Tag.MSG_TYPE, self.msg_type)
        for item in self.fields:
            if isinstance(item, Group):
                for entry in item.entries:
                    order = _order([tag for tag, _ in entry])
                    group = fix.Group(item.count_tag, entry[0][0], order)
                    for tag, value in entry:
                        group.setField(tag, value)
                    message.addGroup(group)
            else:
                message.setField(item[0], item[1])
        return message

    def to_wire(self) -> str:
        """The body as ``tag=value|...`` with SOH separators, in order (for logs and tests)."""
        parts = [f"35={self.msg_type}"]
        for item in self.fields:
            if isinstance(item, Group):
                parts.append(f"{item.count_tag}={len(item.entries)}")
                parts += [f"{t}={v}" for entry in item.entries for t, v in entry]
            else:
                parts.append(f"{item[0]}={item[1]}")
        return SOH.join(parts) + SOH


_ORDERS: dict[tuple[int, ...], object] = {}


def _order(tags: list[int]) -> object:
    """A QuickFIX field order for a group (an int array ending in 0), cached."""
    import quickfix as fix

    key = tuple(dict.fromkeys(tags))
    cached = _ORDERS.get(key)
    if cached is None:
        array = fix.IntArray(len(key) + 1)
        for i, tag in enumerate(key):
            array[i] = tag
        array[len(key)] = 0
        _ORDERS[key] = cached = array
    return cached


def parse(raw: str) -> FixMessage:
    """Read a FIX message string (QuickFIX's ``toString()``): header fields by tag, body fields
    in order. Raises FixFormatError without a MsgType."""
    message = FixMessage("")
    for part in raw.split(SOH):
        if not part:
            continue
        tag_text, sep, value = part.partition("=")
        if not sep or not tag_text.isdigit():
            raise FixFormatError(f"not a FIX field: {part[:40]!r}")
        tag = int(tag_text)
        if tag == Tag.MSG_TYPE:
            message.msg_type = value
            message.header[tag] = value
        elif tag in HEADER_TAGS:
            message.header.setdefault(tag, value)
        elif tag not in TRAILER_TAGS:
            message.fields.append((tag, value))
    if not message.msg_type:
        raise FixFormatError("no MsgType (35)")
    return message


# ---- values -----------------------------------------------------------------------------------


def _text(value: object) -> str:
    if isinstance(value, Decimal):
        return fmt_decimal(value)
    if isinstance(value, datetime):
        return fmt_time(value)
    if isinstance(value, bool):
        return "Y" if value else "N"
    return str(value).replace(SOH, " ")


def fmt_decimal(value: Decimal) -> str:
    """A plain decimal string, never an exponent: ``Decimal('1E+2')`` -> ``100``."""
    return format(value, "f")


def fmt_time(value: datetime) -> str:
    """UTCTimestamp with microseconds: ``20240521-14:03:07.123456``."""
    return value.astimezone(UTC).strftime("%Y%m%d-%H:%M:%S.%f")


def parse_time(text: str) -> datetime:
    """A UTCTimestamp with 0, 3, 6 or 9 fractional digits (nanoseconds are cut to micros)."""
    main, _, fraction = text.partition(".")
    try:
        at = datetime.strptime(main, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise FixFormatError(f"not a UTC timestamp: {text!r}") from None
    if fraction:
        if not fraction.isdigit():
            raise FixFormatError(f"not a UTC timestamp: {text!r}")
        at = at.replace(microsecond=int(fraction[:6].ljust(6, "0")))
    return at


def parse_date_time(date_text: str | None, time_text: str | None) -> datetime | None:
    """MDEntryDate (YYYYMMDD) and MDEntryTime (HH:MM:SS[.fff]) together, or None."""
    if not date_text or not time_text:
        return None
    return parse_time(f"{date_text}-{time_text}")


def decimal(text: str | None, tag: int, default: Decimal | None = None) -> Decimal:
    if text is None or text == "":
        if default is not None:
            return default
        raise FixFormatError(f"tag {tag} missing")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise FixFormatError(f"tag {tag}: {text!r} is not a number") from None
    if not value.is_finite():
        raise FixFormatError(f"tag {tag}: {text!r} is not a finite number")
    return value


def _int(text: str, tag: int) -> int:
    try:
        return int(text)
    except ValueError:
        raise FixFormatError(f"tag {tag}: {text!r} is not an integer") from None


def side_code(side: Side) -> str:
    return _SIDES[side]


def parse_side(text: str | None) -> Side:
    side = _SIDES_BACK.get(text or "")
    if side is None:
        raise FixFormatError(f"unsupported Side (54) {text!r}")
    return side


def ord_status(state: VenueOrderState, filled: Decimal) -> str:
    """OrdStatus (39) of an order in ``state`` having ``filled``."""
    if state is VenueOrderState.OPEN:
        return "1" if filled > 0 else "0"
    return _STATES[state]


def report_ord_status(report: ExecutionReport) -> str:
    """OrdStatus (39) right after ``report``."""
    match report.kind:
        case ReportKind.ACK:
            return "1" if report.cum_quantity > 0 else "0"
        case ReportKind.FILL:
            return "2" if report.leaves_quantity == 0 else "1"
        case ReportKind.CANCELLED:
            return "4"
        case ReportKind.EXPIRED:
            return "C"
        case _:
            return "8"


def _now() -> datetime:
    return datetime.now(UTC)


# ---- orders: ordex -> venue -------------------------------------------------------------------


def new_order_single(order: NewOrder, transact_time: datetime | None = None) -> FixMessage:
    msg = FixMessage(MsgType.NEW_ORDER_SINGLE)
    msg.add(Tag.CL_ORD_ID, order.client_order_id).add(Tag.SYMBOL, order.symbol)
    msg.add(Tag.SIDE, _SIDES[order.side]).add(Tag.ORDER_QTY, order.quantity)
    msg.add(Tag.ORD_TYPE, _ORD_TYPES[order.type])
    if order.type is OrderType.LIMIT:
        msg.add(Tag.PRICE, order.limit_price)
    msg.add(Tag.TIME_IN_FORCE, _TIFS[order.time_in_force])
    msg.add(Tag.TRANSACT_TIME, transact_time or _now())
    return msg


def parse_new_order(msg: FixMessage) -> NewOrder:
    """The order in a NewOrderSingle; FixFormatError says what is wrong with it."""
    ord_type = _ORD_TYPES_BACK.get(msg.get(Tag.ORD_TYPE) or "")
    if ord_type is None:
        raise FixFormatError(f"unsupported OrdType (40) {msg.get(Tag.ORD_TYPE)!r}: "
                             "1 market or 2 limit")
    tif = _TIFS_BACK.get(msg.get(Tag.TIME_IN_FORCE) or "0")
    if tif is None:
        raise FixFormatError(f"unsupported TimeInForce (59) {msg.get(Tag.TIME_IN_FORCE)!r}: "
                             "0 day, 1 GTC, 3 IOC or 4 FOK")
    price = msg.get(Tag.PRICE)
    return NewOrder(
        client_order_id=msg.require(Tag.CL_ORD_ID), symbol=msg.require(Tag.SYMBOL),
        side=parse_side(msg.get(Tag.SIDE)), type=ord_type,
        quantity=decimal(msg.get(Tag.ORDER_QTY), Tag.ORDER_QTY), time_in_force=tif,
        limit_price=decimal(price, Tag.PRICE) if price else None)


def order_cancel_request(cancel_id: str, client_order_id: str, symbol: str, side: Side,
                         transact_time: datetime | None = None) -> FixMessage:
    msg = FixMessage(MsgType.ORDER_CANCEL_REQUEST)
    msg.add(Tag.CL_ORD_ID, cancel_id).add(Tag.ORIG_CL_ORD_ID, client_order_id)
    msg.add(Tag.SYMBOL, symbol).add(Tag.SIDE, _SIDES[side])
    msg.add(Tag.TRANSACT_TIME, transact_time or _now())
    return msg


def order_status_request(request_id: str, client_order_id: str, symbol: str,
                         side: Side) -> FixMessage:
    msg = FixMessage(MsgType.ORDER_STATUS_REQUEST)
    msg.add(Tag.ORD_STATUS_REQ_ID, request_id).add(Tag.CL_ORD_ID, client_order_id)
    msg.add(Tag.SYMBOL, symbol).add(Tag.SIDE, _SIDES[side])
    return msg


def order_mass_status_request(request_id: str, symbol: str | None = None) -> FixMessage:
    msg = FixMessage(MsgType.ORDER_MASS_STATUS_REQUEST).add(Tag.MASS_STATUS_REQ_ID, request_id)
    if symbol is None:
        return msg.add(Tag.MASS_STATUS_REQ_TYPE, "7")
    return msg.add(Tag.MASS_STATUS_REQ_TYPE, "1").add(Tag.SYMBOL, symbol)


def trade_capture_request(request_id: str, since: datetime) -> FixMessage:
    msg = FixMessage(MsgType.TRADE_CAPTURE_REPORT_REQUEST)
    msg.add(Tag.TRADE_REQUEST_ID, request_id).add(Tag.TRADE_REQUEST_TYPE, "0")
    msg.add(Tag.SUBSCRIPTION_REQUEST_TYPE, "0")
    since = since.astimezone(UTC)
    return msg.add_group(Tag.NO_DATES, [[(Tag.TRADE_DATE, since.strftime("%Y%m%d")),
                                         (Tag.TRANSACT_TIME, fmt_time(since))]])


def parse_trade_capture_range(msg: FixMessage) -> tuple[datetime | None, datetime | None]:
    """The start and end of a TradeCaptureReportRequest's NoDates (either may be None)."""
    bounds: list[datetime] = []
    for entry in msg.group(Tag.NO_DATES, (Tag.TRADE_DATE, Tag.TRANSACT_TIME)):
        if Tag.TRANSACT_TIME in entry:
            bounds.append(parse_time(entry[Tag.TRANSACT_TIME]))
        elif Tag.TRADE_DATE in entry:
            day = datetime.strptime(entry[Tag.TRADE_DATE], "%Y%m%d").replace(tzinfo=UTC)
            bounds.append(day)
    start = bounds[0] if bounds else None
    end = bounds[1] if len(bounds) > 1 else None
    return start, end


def security_list_request(request_id: str) -> FixMessage:
    msg = FixMessage(MsgType.SECURITY_LIST_REQUEST).add(Tag.SECURITY_REQ_ID, request_id)
    return msg.add(Tag.SECURITY_LIST_REQUEST_TYPE, "4")


def market_data_request(request_id: str, symbol: str, entry_type: str,
                        subscribe: bool = True) -> FixMessage:
    """Subscribe to (or, ``subscribe`` False, end) one market data stream: one symbol's best
    bid (``0``), best offer (``1``) or last trade (``2``). See the module docstring for why one
    stream per request."""
    msg = FixMessage(MsgType.MARKET_DATA_REQUEST).add(Tag.MD_REQ_ID, request_id)
    msg.add(Tag.SUBSCRIPTION_REQUEST_TYPE, "1" if subscribe else "2")
    msg.add(Tag.MARKET_DEPTH, "1").add(Tag.MD_UPDATE_TYPE, "0")
    msg.add_group(Tag.NO_MD_ENTRY_TYPES, [[(Tag.MD_ENTRY_TYPE, entry_type)]])
    return msg.add_group(Tag.NO_RELATED_SYM, [[(Tag.SYMBOL, symbol)]])


# ---- reports: venue -> ordex ------------------------------------------------------------------


def execution_report(report: ExecutionReport, *, exec_id: str, order_id: str | None,
                     order: NewOrder | None, average_price: Decimal,
                     cl_ord_id: str | None = None,
                     orig_cl_ord_id: str | None = None) -> FixMessage:
    """An ExecutionReport for one of the exchange's reports (not CANCEL_REJECTED). ``cl_ord_id``
    and ``orig_cl_ord_id`` are set on the answer to a cancel request."""
    kind = report.kind
    msg = FixMessage(MsgType.EXECUTION_REPORT)
    msg.add(Tag.ORDER_ID, order_id or NONE_ID)
    msg.add(Tag.CL_ORD_ID, cl_ord_id or report.client_order_id)
    msg.add(Tag.ORIG_CL_ORD_ID, orig_cl_ord_id)
    msg.add(Tag.EXEC_ID, exec_id).add(Tag.EXEC_TYPE, _EXEC_TYPES[kind])
    msg.add(Tag.ORD_STATUS, report_ord_status(report))
    if kind is ReportKind.REJECTED:
        msg.add(Tag.ORD_REJ_REASON, "6" if report.duplicate else _rej_reason(report.reason))
    msg.add(Tag.SYMBOL, report.symbol).add(Tag.SIDE, _SIDES[report.side])
    _add_order_terms(msg, order)
    if kind is ReportKind.FILL:
        msg.add(Tag.LAST_QTY, report.last_quantity).add(Tag.LAST_PX, report.last_price)
    msg.add(Tag.LEAVES_QTY, report.leaves_quantity).add(Tag.CUM_QTY, report.cum_quantity)
    msg.add(Tag.AVG_PX, average_price)
    msg.add(Tag.TRANSACT_TIME, report.timestamp)
    if kind is ReportKind.FILL:
        msg.add(Tag.COMMISSION, report.fee).add(Tag.COMM_TYPE, "3")
        msg.add(Tag.LAST_LIQUIDITY_IND, _LIQUIDITY.get(report.liquidity or ""))
    msg.add(Tag.TEXT, report.reason)
    return msg


def _add_order_terms(msg: FixMessage, order: NewOrder | None) -> None:
    if order is None:
        return
    msg.add(Tag.ORDER_QTY, order.quantity).add(Tag.ORD_TYPE, _ORD_TYPES[order.type])
    if order.type is OrderType.LIMIT:
        msg.add(Tag.PRICE, order.limit_price)
    msg.add(Tag.TIME_IN_FORCE, _TIFS[order.time_in_force])


def _rej_reason(reason: str | None) -> str:
    text = (reason or "").lower()
    if text.startswith("duplicate"):
        return "6"  # duplicate order
    if text.startswith("unknown symbol"):
        return "1"  # unknown symbol
    return "99"  # other: Text says why


def order_cancel_reject(report: ExecutionReport, *, cancel_id: str, order_id: str | None,
                        status: str) -> FixMessage:
    """An OrderCancelReject for a CANCEL_REJECTED report; ``status`` is the order's OrdStatus."""
    unknown = order_id is None
    msg = FixMessage(MsgType.ORDER_CANCEL_REJECT)
    msg.add(Tag.ORDER_ID, order_id or NONE_ID).add(Tag.CL_ORD_ID, cancel_id)
    msg.add(Tag.ORIG_CL_ORD_ID, report.client_order_id)
    msg.add(Tag.ORD_STATUS, "8" if unknown else status).add(Tag.CXL_REJ_RESPONSE_TO, "1")
    msg.add(Tag.CXL_REJ_REASON, "1" if unknown else "0")
    msg.add(Tag.TEXT, report.reason).add(Tag.TRANSACT_TIME, report.timestamp)
    return msg


def status_report(view: VenueOrder | None, *, exec_id: str, client_order_id: str,
                  symbol: str, side: Side, order_id: str | None = None,
                  order: NewOrder | None = None,
                  status_request_id: str | None = None, mass_request_id: str | None = None,
                  total: int | None = None, last: bool = False,
                  text: str | None = None) -> FixMessage:
    """An ExecutionReport with ExecType I: the order as the venue knows it, or (``view`` None)
    OrdStatus 8 with Text ``unknown order`` (or ``text``). ``order_id`` overrides the view's."""
    msg = FixMessage(MsgType.EXECUTION_REPORT)
    msg.add(Tag.ORDER_ID, (order_id or view.venue_order_id) if view else NONE_ID)
    msg.add(Tag.CL_ORD_ID, client_order_id if client_order_id else None)
    msg.add(Tag.ORD_STATUS_REQ_ID, status_request_id)
    msg.add(Tag.MASS_STATUS_REQ_ID, mass_request_id).add(Tag.TOT_NUM_REPORTS, total)
    if mass_request_id is not None:
        msg.add(Tag.LAST_RPT_REQUESTED, last)
    msg.add(Tag.EXEC_ID, exec_id).add(Tag.EXEC_TYPE, ExecType.ORDER_STATUS)
    if view is None:
        msg.add(Tag.ORD_STATUS, "8").add(Tag.SYMBOL, symbol or NOT_APPLICABLE)
        msg.add(Tag.SIDE, _SIDES[side]).add(Tag.LEAVES_QTY, "0").add(Tag.CUM_QTY, "0")
        msg.add(Tag.AVG_PX, "0").add(Tag.TEXT, text or UNKNOWN_ORDER)
        return msg
    msg.add(Tag.ORD_STATUS, ord_status(view.state, view.filled_quantity))
    msg.add(Tag.SYMBOL, view.symbol).add(Tag.SIDE, _SIDES[view.side])
    if order is not None:
        _add_order_terms(msg, order)
    else:
        msg.add(Tag.ORDER_QTY, view.quantity).add(Tag.ORD_TYPE, _ORD_TYPES[view.type])
        msg.add(Tag.PRICE, view.limit_price)
    leaves = view.quantity - view.filled_quantity if view.state.is_open else ZERO
    msg.add(Tag.LEAVES_QTY, leaves).add(Tag.CUM_QTY, view.filled_quantity)
    msg.add(Tag.AVG_PX, view.average_price if view.average_price is not None else ZERO)
    msg.add(Tag.TRANSACT_TIME, _now()).add(Tag.TEXT, view.reason)
    return msg


def _timestamp(msg: FixMessage) -> datetime:
    text = msg.get(Tag.TRANSACT_TIME) or msg.header.get(Tag.SENDING_TIME)
    return parse_time(text) if text else _now()


def report_kind(msg: FixMessage) -> ReportKind | None:
    """The report an ExecutionReport carries; None for an order status answer (ExecType I) and
    for exec types ordex does not act on (pending new, pending cancel, restated...)."""
    return _EXEC_TYPES_BACK.get(msg.get(Tag.EXEC_TYPE) or "")


def parse_execution_report(msg: FixMessage, venue: str) -> ExecutionReport | None:
    """The Venue report in an ExecutionReport, or None if it is not one (see ``report_kind``)."""
    kind = report_kind(msg)
    if kind is None:
        return None
    client_order_id = msg.get(Tag.ORIG_CL_ORD_ID) or msg.require(Tag.CL_ORD_ID)
    order_id = msg.get(Tag.ORDER_ID)
    fill = kind is ReportKind.FILL
    comm_type = msg.get(Tag.COMM_TYPE)
    fee = decimal(msg.get(Tag.COMMISSION), Tag.COMMISSION, ZERO) if comm_type in (None, "3") \
        else ZERO
    return ExecutionReport(
        venue=venue, client_order_id=client_order_id, exec_id=msg.require(Tag.EXEC_ID),
        kind=kind, timestamp=_timestamp(msg), symbol=msg.get(Tag.SYMBOL) or "",
        side=parse_side(msg.get(Tag.SIDE)),
        venue_order_id=order_id if order_id and order_id != NONE_ID else None,
        last_quantity=decimal(msg.get(Tag.LAST_QTY), Tag.LAST_QTY, ZERO) if fill else ZERO,
        last_price=decimal(msg.get(Tag.LAST_PX), Tag.LAST_PX, ZERO) if fill else ZERO,
        fee=fee if fill else ZERO,
        cum_quantity=decimal(msg.get(Tag.CUM_QTY), Tag.CUM_QTY, ZERO),
        leaves_quantity=decimal(msg.get(Tag.LEAVES_QTY), Tag.LEAVES_QTY, ZERO),
        liquidity=_LIQUIDITY_BACK.get(msg.get(Tag.LAST_LIQUIDITY_IND) or "") if fill else None,
        reason=msg.get(Tag.TEXT),
        duplicate=kind is ReportKind.REJECTED and msg.get(Tag.ORD_REJ_REASON) == "6")


def parse_cancel_reject(msg: FixMessage, venue: str, symbol: str, side: Side) -> ExecutionReport:
    """A CANCEL_REJECTED report from an OrderCancelReject. The message names neither symbol nor
    side (the caller remembers them) and has no ExecID: the cancel request's ClOrdID, unique per
    request, stands in (``cxlrej-<ClOrdID>``)."""
    order_id = msg.get(Tag.ORDER_ID)
    cancel_id = msg.require(Tag.CL_ORD_ID)
    return ExecutionReport(
        venue=venue, client_order_id=msg.get(Tag.ORIG_CL_ORD_ID) or cancel_id,
        exec_id=f"cxlrej-{cancel_id}", kind=ReportKind.CANCEL_REJECTED,
        timestamp=_timestamp(msg), symbol=symbol, side=side,
        venue_order_id=order_id if order_id and order_id != NONE_ID else None,
        reason=msg.get(Tag.TEXT) or f"cancel rejected (CxlRejReason {msg.get(102)})")


def is_unknown_order(msg: FixMessage) -> bool:
    """Whether a status answer says the venue does not know the order."""
    return msg.get(Tag.ORD_STATUS) == "8" and (msg.get(Tag.ORDER_ID) in (None, NONE_ID)
                                              or msg.get(Tag.ORD_REJ_REASON) == "5"
                                              or (msg.get(Tag.TEXT) or "") == UNKNOWN_ORDER)


def parse_order_status(msg: FixMessage, venue: str) -> VenueOrder | None:
    """The order in a status answer (ExecType I), or None if the venue does not know it."""
    if is_unknown_order(msg):
        return None
    status = msg.require(Tag.ORD_STATUS)
    state = _STATES_BACK.get(status)
    if state is None:
        raise FixFormatError(f"unsupported OrdStatus (39) {status!r}")
    cum = decimal(msg.get(Tag.CUM_QTY), Tag.CUM_QTY, ZERO)
    leaves = decimal(msg.get(Tag.LEAVES_QTY), Tag.LEAVES_QTY, ZERO)
    quantity = decimal(msg.get(Tag.ORDER_QTY), Tag.ORDER_QTY, cum + leaves)
    avg = decimal(msg.get(Tag.AVG_PX), Tag.AVG_PX, ZERO)
    price = msg.get(Tag.PRICE)
    order_type = _ORD_TYPES_BACK.get(msg.get(Tag.ORD_TYPE) or "",
                                     OrderType.LIMIT if price else OrderType.MARKET)
    return VenueOrder(
        venue=venue, client_order_id=msg.require(Tag.CL_ORD_ID),
        venue_order_id=msg.require(Tag.ORDER_ID), symbol=msg.require(Tag.SYMBOL),
        side=parse_side(msg.get(Tag.SIDE)), type=order_type, quantity=quantity,
        filled_quantity=cum, average_price=avg if cum > 0 else None, state=state,
        limit_price=decimal(price, Tag.PRICE) if price else None, reason=msg.get(Tag.TEXT))


def trade_capture_ack(request_id: str, total: int, *, accepted: bool = True,
                      text: str | None = None) -> FixMessage:
    msg = FixMessage(MsgType.TRADE_CAPTURE_REPORT_REQUEST_ACK)
    msg.add(Tag.TRADE_REQUEST_ID, request_id).add(Tag.TRADE_REQUEST_TYPE, "0")
    msg.add(Tag.TRADE_REQUEST_RESULT, "0" if accepted else "99")
    msg.add(Tag.TRADE_REQUEST_STATUS, "0" if accepted else "2")
    return msg.add(Tag.TOT_NUM_TRADE_REPORTS, total).add(Tag.TEXT, text)


def trade_capture_report(report: ExecutionReport, *, exec_id: str, order_id: str | None,
                         request_id: str, total: int, last: bool) -> FixMessage:
    """One fill as a TradeCaptureReport (answer to a TradeCaptureReportRequest)."""
    msg = FixMessage(MsgType.TRADE_CAPTURE_REPORT)
    msg.add(Tag.TRADE_REPORT_ID, exec_id).add(Tag.TRADE_REQUEST_ID, request_id)
    msg.add(Tag.TOT_NUM_TRADE_REPORTS, total).add(Tag.LAST_RPT_REQUESTED, last)
    msg.add(Tag.EXEC_TYPE, ExecType.TRADE).add(Tag.EXEC_ID, exec_id)
    msg.add(Tag.ORD_STATUS, report_ord_status(report)).add(Tag.PREVIOUSLY_REPORTED, True)
    msg.add(Tag.SYMBOL, report.symbol).add(Tag.LAST_QTY, report.last_quantity)
    msg.add(Tag.LAST_PX, report.last_price)
    msg.add(Tag.TRADE_DATE, report.timestamp.astimezone(UTC).strftime("%Y%m%d"))
    msg.add(Tag.TRANSACT_TIME, report.timestamp)
    return msg.add_group(Tag.NO_SIDES, [[
        (Tag.SIDE, _SIDES[report.side]), (Tag.ORDER_ID, order_id or NONE_ID),
        (Tag.CL_ORD_ID, report.client_order_id), (Tag.COMMISSION, fmt_decimal(report.fee)),
        (Tag.COMM_TYPE, "3")]])


def parse_trade_capture_report(msg: FixMessage, venue: str) -> ExecutionReport:
    """A FILL report from a TradeCaptureReport. A trade capture report carries neither CumQty,
    LeavesQty nor LastLiquidityInd: those stay 0 / None (ask ``query`` for the order's state)."""
    sides = msg.group(Tag.NO_SIDES, (Tag.SIDE, Tag.ORDER_ID, Tag.CL_ORD_ID, Tag.COMMISSION,
                                     Tag.COMM_TYPE))
    if not sides:
        raise FixFormatError("35=AE without NoSides (552)")
    side = sides[0]
    order_id = side.get(Tag.ORDER_ID)
    fee = decimal(side.get(Tag.COMMISSION), Tag.COMMISSION, ZERO) \
        if side.get(Tag.COMM_TYPE) in (None, "3") else ZERO
    client_order_id = side.get(Tag.CL_ORD_ID)
    if not client_order_id:
        raise FixFormatError("35=AE without ClOrdID (11)")
    return ExecutionReport(
        venue=venue, client_order_id=client_order_id,
        exec_id=msg.get(Tag.EXEC_ID) or msg.require(Tag.TRADE_REPORT_ID), kind=ReportKind.FILL,
        timestamp=_timestamp(msg), symbol=msg.require(Tag.SYMBOL),
        side=parse_side(side.get(Tag.SIDE)),
        venue_order_id=order_id if order_id and order_id != NONE_ID else None,
        last_quantity=decimal(msg.get(Tag.LAST_QTY), Tag.LAST_QTY),
        last_price=decimal(msg.get(Tag.LAST_PX), Tag.LAST_PX), fee=fee)


def security_list(request_id: str, response_id: str, symbol: str, total: int,
                  last: bool) -> FixMessage:
    """One fragment of a SecurityList: one symbol, with the total and LastFragment."""
    msg = FixMessage(MsgType.SECURITY_LIST).add(Tag.SECURITY_REQ_ID, request_id)
    msg.add(Tag.SECURITY_RESPONSE_ID, response_id).add(Tag.SECURITY_REQUEST_RESULT, "0")
    msg.add(Tag.TOT_NO_RELATED_SYM, total).add(Tag.LAST_FRAGMENT, last)
    return msg.add_group(Tag.NO_RELATED_SYM, [[(Tag.SYMBOL, symbol)]])


def parse_symbols(msg: FixMessage) -> list[str]:
    """The symbols of a SecurityList's or a MarketDataRequest's NoRelatedSym."""
    return [e[Tag.SYMBOL] for e in msg.group(Tag.NO_RELATED_SYM, (Tag.SYMBOL,))
            if Tag.SYMBOL in e]


def parse_entry_types(msg: FixMessage) -> list[str]:
    """The MDEntryTypes of a MarketDataRequest."""
    return [e[Tag.MD_ENTRY_TYPE] for e in msg.group(Tag.NO_MD_ENTRY_TYPES, (Tag.MD_ENTRY_TYPE,))
            if Tag.MD_ENTRY_TYPE in e]


BID, OFFER, TRADE = "0", "1", "2"
ENTRY_TYPES = (BID, OFFER, TRADE)


def quote_price(quote: Quote, entry_type: str) -> Decimal | None:
    return {BID: quote.bid, OFFER: quote.ask, TRADE: quote.last}.get(entry_type)


def market_data_snapshot(request_id: str, quote: Quote, entry_type: str) -> FixMessage:
    """The full refresh of one stream at depth 1: one entry (none if that side is empty), with
    QuoteCondition B (closed) while the symbol is halted, A (open) otherwise."""
    msg = FixMessage(MsgType.MARKET_DATA_SNAPSHOT).add(Tag.MD_REQ_ID, request_id)
    msg.add(Tag.SYMBOL, quote.symbol)
    price = quote_price(quote, entry_type)
    if price is None:
        return msg.add(Tag.NO_MD_ENTRIES, "0")
    at = quote.timestamp.astimezone(UTC)
    return msg.add_group(Tag.NO_MD_ENTRIES, [[
        (Tag.MD_ENTRY_TYPE, entry_type), (Tag.MD_ENTRY_PX, fmt_decimal(price)),
        (Tag.MD_ENTRY_DATE, at.strftime("%Y%m%d")), (Tag.MD_ENTRY_TIME, at.strftime("%H:%M:%S.%f")),
        (Tag.QUOTE_CONDITION, "B" if quote.halted else "A")]])


@dataclass(frozen=True, slots=True)
class MarketDataEntry:
    """One stream's full refresh: its entry, or none (``entry_type`` None: the side is empty)."""

    request_id: str
    symbol: str
    entry_type: str | None
    price: Decimal | None
    halted: bool | None
    timestamp: datetime


def parse_market_data_snapshot(msg: FixMessage) -> MarketDataEntry:
    entries = msg.group(Tag.NO_MD_ENTRIES, (Tag.MD_ENTRY_TYPE, Tag.MD_ENTRY_PX,
                                            Tag.MD_ENTRY_DATE, Tag.MD_ENTRY_TIME,
                                            Tag.QUOTE_CONDITION))
    entry = entries[0] if entries else {}
    at = parse_date_time(entry.get(Tag.MD_ENTRY_DATE), entry.get(Tag.MD_ENTRY_TIME))
    if at is None:
        sent = msg.header.get(Tag.SENDING_TIME)
        at = parse_time(sent) if sent else _now()
    condition = entry.get(Tag.QUOTE_CONDITION)
    price = entry.get(Tag.MD_ENTRY_PX)
    return MarketDataEntry(
        request_id=msg.get(Tag.MD_REQ_ID) or "", symbol=msg.require(Tag.SYMBOL),
        entry_type=entry.get(Tag.MD_ENTRY_TYPE),
        price=decimal(price, Tag.MD_ENTRY_PX) if price else None,
        halted=None if condition is None else condition == "B", timestamp=at)


def market_data_reject(request_id: str, reason: str, text: str) -> FixMessage:
    msg = FixMessage(MsgType.MARKET_DATA_REQUEST_REJECT).add(Tag.MD_REQ_ID, request_id)
    return msg.add(Tag.MD_REQ_REJ_REASON, reason).add(Tag.TEXT, text)


def business_reject(ref: FixMessage, reason: str, text: str,
                    ref_id: str | None = None) -> FixMessage:
    """BusinessMessageReject: 380 is 3 (unsupported message type), 5 (conditionally required
    field missing) or 0 (other)."""
    msg = FixMessage(MsgType.BUSINESS_MESSAGE_REJECT)
    msg.add(Tag.REF_SEQ_NUM, ref.seq_num).add(Tag.REF_MSG_TYPE, ref.msg_type)
    msg.add(Tag.BUSINESS_REJECT_REF_ID, ref_id).add(Tag.BUSINESS_REJECT_REASON, reason)
    return msg.add(Tag.TEXT, text)
