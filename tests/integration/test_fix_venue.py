"""The simulated exchange as its own process (``ordex venue``) and ordex's FixVenue talking FIX 4.4
to it over loopback TCP: orders, cancels, status, reconciliation, market data, faults, and
sequence numbers that survive reconnects and restarts.

One venue process and one connected FixVenue serve most tests (module scope, one event loop);
each test uses its own symbols and client order ids. Tests that restart things start their own.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio

from ordex.config import Settings
from ordex.domain.orders import OrderType, Side, TimeInForce
from ordex.venues.base import (
    ExecutionReport,
    NewOrder,
    Quote,
    ReportKind,
    VenueOrderState,
    VenueUnavailable,
)
from ordex.venues.fix import messages as m
from ordex.venues.fix.adapter import FixVenue
from ordex.venues.fix.session import read_seqnums
from tests.support.postgres import free_port
from tests.support.venue_process import VenueProcess

pytestmark = pytest.mark.asyncio(loop_scope="module")

_ids = itertools.count(1)


def cid(tag: str) -> str:
    return f"{tag}-{next(_ids)}"


class ReportFeed:
    """Drains ``venue.reports()`` into per-order lists that tests wait on."""

    def __init__(self, venue: FixVenue) -> None:
        self.venue = venue
        self.by_order: dict[str, list[ExecutionReport]] = defaultdict(list)
        self.all: list[ExecutionReport] = []
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for report in self.venue.reports():
            self.by_order[report.client_order_id].append(report)
            self.all.append(report)
            self._changed.set()

    async def wait(self, client_order_id: str,
                   done: Callable[[list[ExecutionReport]], bool],
                   seconds: float = 8.0) -> list[ExecutionReport]:
        async with asyncio.timeout(seconds):
            while not done(self.by_order[client_order_id]):
                self._changed.clear()
                await self._changed.wait()
        return list(self.by_order[client_order_id])

    async def final(self, client_order_id: str, seconds: float = 8.0) -> list[ExecutionReport]:
        """Wait until the order is done (filled, cancelled, rejected, expired)."""
        return await self.wait(client_order_id, _finished, seconds)

    async def stop(self) -> None:
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task


def _finished(reports: list[ExecutionReport]) -> bool:
    if not reports:
        return False
    last = reports[-1]
    if last.kind is ReportKind.FILL:
        return last.leaves_quantity == 0
    return last.kind in (ReportKind.CANCELLED, ReportKind.REJECTED, ReportKind.EXPIRED)


def _kinds(reports: list[ExecutionReport]) -> list[ReportKind]:
    return [r.kind for r in reports]


def market(client_order_id: str, symbol: str, quantity: int, side: Side = Side.BUY,
           tif: TimeInForce = TimeInForce.DAY) -> NewOrder:
    return NewOrder(client_order_id, symbol, side, OrderType.MARKET, Decimal(quantity), tif)


def limit(client_order_id: str, symbol: str, quantity: int, price: str, side: Side = Side.BUY,
          tif: TimeInForce = TimeInForce.GTC) -> NewOrder:
    return NewOrder(client_order_id, symbol, side, OrderType.LIMIT, Decimal(quantity), tif,
                    Decimal(price))


async def wait_for(predicate: Callable[[], bool], seconds: float = 8.0) -> None:
    """Poll ``predicate`` (FixVenue state changes from QuickFIX callbacks: no event to wait on)."""
    async with asyncio.timeout(seconds):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def make_venue(port: int, data_dir: Path, **kwargs: object) -> FixVenue:
    options: dict[str, object] = {"name": "SIM", "data_dir": data_dir, "heartbeat_seconds": 1,
                                  "reconnect_seconds": 1, "logon_timeout": 10.0,
                                  "request_timeout": 3.0}
    options.update(kwargs)
    return FixVenue("127.0.0.1", port, **options)  # type: ignore[arg-type]


# ---- module fixtures: one venue process, one connected FixVenue --------------------------------


@pytest.fixture(scope="module")
def venue_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VenueProcess]:
    process = VenueProcess(tmp_path_factory.mktemp("venue") / "data")
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def connected(venue_process: VenueProcess, tmp_path_factory: pytest.TempPathFactory,
                    ) -> AsyncIterator[tuple[FixVenue, ReportFeed]]:
    venue = make_venue(venue_process.port, tmp_path_factory.mktemp("ordex") / "data")
    await venue.start()
    feed = ReportFeed(venue)
    try:
        assert venue.logged_on
        yield venue, feed
    finally:
        await feed.stop()
        await venue.stop()


@pytest.fixture
def fv(connected: tuple[FixVenue, ReportFeed]) -> FixVenue:
    return connected[0]


@pytest.fixture
def feed(connected: tuple[FixVenue, ReportFeed]) -> ReportFeed:
    return connected[1]


# ---- messages without a network ----------------------------------------------------------------


async def test_messages_round_trip_through_quickfix() -> None:
    import quickfix as fix

    order = limit("c-1", "AAPL", 150, "189.25", Side.SELL, TimeInForce.IOC)
    raw = m.new_order_single(order).to_quickfix().toString()
    assert "\x0144=189.25\x01" in raw and "\x0159=3\x01" in raw
    assert m.parse_new_order(m.parse(raw)) == order

    at = datetime(2024, 5, 21, 14, 3, 7, 123456, tzinfo=UTC)
    fill = ExecutionReport(
        venue="SIM", client_order_id="c-1", exec_id="SIM-e9", kind=ReportKind.FILL,
        timestamp=at, symbol="AAPL", side=Side.SELL, venue_order_id="SIM-o3",
        last_quantity=Decimal(50), last_price=Decimal("189.25"), fee=Decimal("0.95"),
        cum_quantity=Decimal(50), leaves_quantity=Decimal(100), liquidity="taker")
    wire = m.execution_report(fill, exec_id="SIM-e9", order_id="SIM-o3", order=order,
                              average_price=Decimal("189.25")).to_quickfix().toString()
    for field in ("17=SIM-e9", "150=F", "39=1", "32=50", "31=189.25", "12=0.95", "13=3",
                  "851=2", "14=50", "151=100", "6=189.25", "60=20240521-14:03:07.123456"):
        assert f"\x01{field}\x01" in wire, field
    assert m.parse_execution_report(m.parse(wire), "SIM") == fill
    assert m.fmt_decimal(Decimal("1E+2")) == "100"
    assert isinstance(fix.Message(), fix.Message)


# ---- orders over FIX ---------------------------------------------------------------------------


async def test_market_order_acked_then_filled_with_exec_ids_prices_and_fees(
        fv: FixVenue, feed: ReportFeed) -> None:
    order_id = cid("mkt")
    await fv.submit(market(order_id, "MSFT", 120))
    reports = await feed.final(order_id)
    assert reports[0].kind is ReportKind.ACK and reports[0].venue_order_id
    fills = reports[1:]
    assert fills and all(r.kind is ReportKind.FILL for r in fills)
    assert sum(r.last_quantity for r in fills) == 120 and fills[-1].cum_quantity == 120
    assert len({r.exec_id for r in reports}) == len(reports)
    assert all(r.exec_id.startswith("SIM-e") for r in reports)
    for r in fills:
        assert r.venue == "SIM" and r.symbol == "MSFT" and r.side is Side.BUY
        assert r.last_price > 400 and r.liquidity == "taker"
        assert r.fee == (r.last_quantity * r.last_price / 10_000).quantize(Decimal("0.01"))


async def test_resting_limit_fills_when_the_market_moves_through_it(
        venue_process: VenueProcess, fv: FixVenue, feed: ReportFeed) -> None:
    order_id = cid("lim")
    await fv.submit(limit(order_id, "AAPL", 100, "188.00"))
    reports = await feed.wait(order_id, lambda rs: len(rs) >= 1)
    assert _kinds(reports) == [ReportKind.ACK]
    await venue_process.admin("POST", "/market/AAPL", {"price": "187.50"})
    reports = await feed.final(order_id)
    assert _kinds(reports) == [ReportKind.ACK, ReportKind.FILL]
    fill = reports[1]
    assert (fill.last_quantity, fill.last_price, fill.liquidity) == (100, Decimal("188.00"),
                                                                     "maker")
    assert fill.fee == Decimal("0.94")  # 100 * 188.00 * 0.5 bp


async def test_cancel_a_resting_order_then_cancel_again_is_rejected(
        fv: FixVenue, feed: ReportFeed) -> None:
    order_id = cid("cxl")
    await fv.submit(limit(order_id, "GOOGL", 10, "150.00"))
    await feed.wait(order_id, lambda rs: len(rs) >= 1)
    await fv.cancel(order_id)
    reports = await feed.final(order_id)
    assert _kinds(reports) == [ReportKind.ACK, ReportKind.CANCELLED]
    assert reports[1].reason == "cancelled on request" and reports[1].leaves_quantity == 0
    await fv.cancel(order_id)
    reports = await feed.wait(order_id, lambda rs: len(rs) >= 3)
    assert reports[2].kind is ReportKind.CANCEL_REJECTED
    assert reports[2].reason == f"order {order_id} is already cancelled"
    assert (reports[2].symbol, reports[2].side) == ("GOOGL", Side.BUY)


async def test_ioc_remainder_is_cancelled(venue_process: VenueProcess, fv: FixVenue,
                                          feed: ReportFeed) -> None:
    book = (await venue_process.admin("POST", "/liquidity/NVDA",
                                      {"depth_levels": 2, "level_size": "100"}))["book"]
    worst_ask = book["asks"][-1]["price"]
    order_id = cid("ioc")
    await fv.submit(limit(order_id, "NVDA", 500, worst_ask, tif=TimeInForce.IOC))
    reports = await feed.final(order_id)
    assert _kinds(reports) == [ReportKind.ACK, ReportKind.FILL, ReportKind.FILL,
                               ReportKind.CANCELLED]
    assert reports[-1].cum_quantity == 200 and reports[-1].leaves_quantity == 0
    assert "immediate or cancel" in (reports[-1].reason or "")


async def test_fok_is_refused_when_depth_is_short(venue_process: VenueProcess, fv: FixVenue,
                                                  feed: ReportFeed) -> None:
    await venue_process.admin("POST", "/liquidity/META", {"depth_levels": 1, "level_size": "100"})
    order_id = cid("fok")
    await fv.submit(market(order_id, "META", 500, tif=TimeInForce.FOK))
    reports = await feed.final(order_id)
    assert _kinds(reports) == [ReportKind.REJECTED]
    assert reports[0].reason == "fill or kill: only 100 of 500 available"


async def test_halted_symbols_are_rejected_with_their_reason(
        venue_process: VenueProcess, fv: FixVenue, feed: ReportFeed) -> None:
    suspended = cid("halt")
    await fv.submit(market(suspended, "SIVBQ", 10))
    assert (await feed.final(suspended))[0].reason == "SIVBQ is halted at SIM: suspended"

    await venue_process.admin("POST", "/halt/TSLA", {"reason": "news pending"})
    halted = cid("halt")
    await fv.submit(market(halted, "TSLA", 10))
    reports = await feed.final(halted)
    assert _kinds(reports) == [ReportKind.REJECTED]
    assert reports[0].reason == "TSLA is halted at SIM: news pending"
    await venue_process.admin("POST", "/resume/TSLA")
    resumed = cid("halt")
    await fv.submit(market(resumed, "TSLA", 10))
    assert (await feed.final(resumed))[-1].kind is ReportKind.FILL


async def test_query_a_known_and_an_unknown_order(fv: FixVenue, feed: ReportFeed) -> None:
    order_id = cid("qry")
    await fv.submit(limit(order_id, "KO", 30, "60.00", side=Side.BUY))
    await feed.wait(order_id, lambda rs: len(rs) >= 1)
    known = await fv.query(order_id)
    assert known is not None
    assert (known.client_order_id, known.symbol, known.side, known.type) == (
        order_id, "KO", Side.BUY, OrderType.LIMIT)
    assert (known.quantity, known.filled_quantity, known.limit_price, known.state) == (
        30, 0, Decimal("60.00"), VenueOrderState.OPEN)
    assert known.venue_order_id == feed.by_order[order_id][0].venue_order_id
    assert await fv.query("never-sent") is None


async def test_open_orders_by_mass_status(fv: FixVenue, feed: ReportFeed) -> None:
    resting = [cid("open"), cid("open")]
    for order_id, price in zip(resting, ("160.00", "161.00"), strict=True):
        await fv.submit(limit(order_id, "PEP", 5, price))
        await feed.wait(order_id, lambda rs: len(rs) >= 1)
    done = cid("open")
    await fv.submit(market(done, "PEP", 5))
    await feed.final(done)
    orders = {o.client_order_id: o for o in await fv.open_orders()}
    assert set(resting) <= set(orders) and done not in orders
    assert orders[resting[1]].limit_price == Decimal("161.00")
    assert all(o.state is VenueOrderState.OPEN for o in orders.values())


async def test_fills_since_by_trade_capture(fv: FixVenue, feed: ReportFeed) -> None:
    since = datetime.now(UTC)
    order_id = cid("tc")
    await fv.submit(market(order_id, "WMT", 300))
    fills = [r for r in await feed.final(order_id) if r.kind is ReportKind.FILL]
    recon = [f for f in await fv.fills_since(since) if f.client_order_id == order_id]
    assert [(f.exec_id, f.last_quantity, f.last_price, f.fee) for f in recon] == [
        (f.exec_id, f.last_quantity, f.last_price, f.fee) for f in fills]
    assert all(f.timestamp >= since and f.venue_order_id for f in recon)
    assert await fv.fills_since(datetime.now(UTC)) == []


async def test_quotes_over_fix_market_data(venue_process: VenueProcess, fv: FixVenue) -> None:
    stream = fv.quotes()
    seen: dict[str, Quote] = {}

    async def take_until(done: Callable[[], bool]) -> None:
        async with asyncio.timeout(8):
            while not done():
                quote = await anext(stream)
                seen[quote.symbol] = quote

    await take_until(lambda: len(seen) >= 25)
    assert seen["SIVBQ"].halted and not seen["AAPL"].halted
    assert seen["JNJ"].bid is not None and seen["JNJ"].ask is not None
    await venue_process.admin("POST", "/market/JNJ", {"price": "150.00"})
    await take_until(lambda: seen["JNJ"].bid == Decimal("149.99"))
    assert seen["JNJ"].ask == Decimal("150.01")
    await venue_process.admin("POST", "/halt/JNJ", {"reason": "test"})
    await take_until(lambda: seen["JNJ"].halted)
    await venue_process.admin("POST", "/resume/JNJ")
    await take_until(lambda: not seen["JNJ"].halted)


async def test_ack_delay_holds_one_order_without_blocking_others(
        venue_process: VenueProcess, fv: FixVenue, feed: ReportFeed) -> None:
    await venue_process.admin("POST", "/faults", {"ack_delay": 1.0})
    slow = cid("slow")
    await fv.submit(market(slow, "PG", 10))
    await venue_process.admin("POST", "/faults/reset")
    quick = cid("quick")
    await fv.submit(market(quick, "PG", 10))
    await feed.final(quick)
    assert feed.by_order[slow] == []
    reports = await feed.final(slow, seconds=5)
    assert _kinds(reports) == [ReportKind.ACK, ReportKind.FILL]
    assert feed.all.index(reports[0]) > feed.all.index(feed.by_order[quick][-1])


async def test_admin_orders_list_what_was_sent(venue_process: VenueProcess, fv: FixVenue,
                                               feed: ReportFeed) -> None:
    listed = {o["client_order_id"]: o for o in
              (await venue_process.admin("GET", "/orders"))["orders"]}
    assert set(feed.by_order) <= set(listed) | {"never-sent"}
    for order_id, reports in feed.by_order.items():
        entry = listed[order_id]
        fills = [r for r in reports if r.kind is ReportKind.FILL]
        assert [f["exec_id"] for f in entry["fills"]] == [f.exec_id for f in fills]
        assert Decimal(entry["filled_quantity"]) == sum((f.last_quantity for f in fills),
                                                        Decimal(0))
        if reports[0].venue_order_id:
            assert entry["venue_order_id"] == reports[0].venue_order_id


# ---- faults and the session --------------------------------------------------------------------


async def test_tcp_disconnect_and_reconnect_keep_sequence_numbers_and_lose_nothing(
        venue_process: VenueProcess, fv: FixVenue, feed: ReportFeed) -> None:
    order_id = cid("reconnect")
    await fv.submit(limit(order_id, "XOM", 50, "110.00"))
    await feed.wait(order_id, lambda rs: len(rs) >= 1)
    seq_before = fv.seqnums()
    assert seq_before is not None and seq_before[1] > 2
    logons = fv.logons

    assert (await venue_process.admin("POST", "/disconnect"))["dropped"] is True
    # The fill happens while the connection is down: QuickFIX stores it at the venue and
    # resends it when ordex, logging on again, asks for the gap.
    await venue_process.admin("POST", "/market/XOM", {"price": "109.50"})
    reports = await feed.final(order_id, seconds=10)
    assert _kinds(reports) == [ReportKind.ACK, ReportKind.FILL]
    assert fv.logons == logons + 1
    # Sequence numbers carry on (a reset would start again at 1); QuickFIX counts a message in
    # just after handing it over, so wait for it.
    await wait_for(lambda: (fv.seqnums() or (0, 0))[1] > seq_before[1])
    seq_after = fv.seqnums()
    assert seq_after is not None and seq_after[0] > seq_before[0]
    stored = read_seqnums(venue_process.seqnums_file())
    assert stored is not None and stored[0] >= seq_after[1] and stored[1] >= seq_before[0]
    assert [r.exec_id for r in feed.all].count(reports[1].exec_id) == 1


async def test_connection_dropped_mid_execution_loses_no_fill(
        venue_process: VenueProcess, fv: FixVenue, feed: ReportFeed) -> None:
    await venue_process.admin("POST", "/liquidity/HD", {"depth_levels": 3, "level_size": "100"})
    await venue_process.admin("POST", "/faults", {"drop_connection_mid_execution": True})
    logons = fv.logons
    order_id = cid("drop")
    await fv.submit(market(order_id, "HD", 300))
    reports = await feed.final(order_id, seconds=10)
    assert _kinds(reports) == [ReportKind.ACK] + [ReportKind.FILL] * 3
    assert reports[-1].cum_quantity == 300
    await wait_for(lambda: fv.logons == logons + 1 and fv.logged_on)
    faults = await venue_process.admin("GET", "/faults")
    assert faults["drop_connection_mid_execution"] is False  # one-shot


async def test_venue_down_raises_venue_unavailable_and_recovers(
        venue_process: VenueProcess, fv: FixVenue, feed: ReportFeed) -> None:
    resting = cid("down")
    await fv.submit(limit(resting, "DIS", 20, "100.00"))
    await feed.wait(resting, lambda rs: len(rs) >= 1)

    await venue_process.admin("POST", "/faults", {"down": True})
    await wait_for(lambda: not fv.logged_on)
    with pytest.raises(VenueUnavailable):
        await fv.submit(market(cid("down"), "DIS", 1))
    with pytest.raises(VenueUnavailable):
        await fv.cancel(resting)
    with pytest.raises(VenueUnavailable):
        await fv.query(resting)
    with pytest.raises(VenueUnavailable):
        await fv.open_orders()
    # Filled while the venue is down: the report waits and arrives after the recovery.
    await venue_process.admin("POST", "/market/DIS", {"price": "99.50"})
    await asyncio.sleep(1.2)  # a reconnect attempt is refused meanwhile
    assert not fv.logged_on

    await venue_process.admin("POST", "/faults", {"down": False})
    assert await fv.wait_logged_on(8)
    reports = await feed.final(resting, seconds=8)
    assert _kinds(reports) == [ReportKind.ACK, ReportKind.FILL]
    after = cid("down")
    await fv.submit(market(after, "DIS", 5))
    assert (await feed.final(after))[-1].kind is ReportKind.FILL


# ---- start-up order and restarts (their own venue and adapter) ---------------------------------


async def test_adapter_waits_for_a_late_venue_and_a_restarted_venue_resumes_sequence_numbers(
        tmp_path: Path) -> None:
    # Its own session ids: QuickFIX allows one session per id in a process, and the module's
    # FixVenue has ORDEX -> SIM.
    port = free_port()
    venue = make_venue(port, tmp_path / "ordex", name="SIM2", sender_comp_id="ORDEX2",
                       logon_timeout=0.3)
    await venue.start()  # nothing listens yet: start() returns, QuickFIX keeps retrying
    feed = ReportFeed(venue)
    process = VenueProcess(tmp_path / "venue", port=port, name="SIM2", client_comp_id="ORDEX2")
    try:
        assert not venue.logged_on
        with pytest.raises(VenueUnavailable):
            await venue.submit(market(cid("late"), "AAPL", 1))
        process.start()
        assert await venue.wait_logged_on(8)
        first = cid("late")
        await venue.submit(market(first, "AAPL", 10))
        first_reports = await feed.final(first)
        rest = cid("rest")  # a GTC bid far below the market: it rests through the restart
        await venue.submit(limit(rest, "KO", 7, "40.00"))
        rest_ack = (await feed.wait(rest, lambda r: bool(r)))[0]
        assert rest_ack.kind is ReportKind.ACK
        seq_before = read_seqnums(process.seqnums_file())
        assert seq_before is not None

        process.stop()  # same data dir and port: the FIX store carries on
        await wait_for(lambda: not venue.logged_on)
        process.start()
        assert await venue.wait_logged_on(8)
        session = await process.admin("GET", "/session")
        assert session["run"] == 2 and session["next_sender_seq"] > seq_before[0]
        assert session["next_target_seq"] > seq_before[1]
        found = await venue.query(rest)  # the venue kept its book (exchange journal)
        assert found is not None and found.state is VenueOrderState.OPEN
        assert found.venue_order_id == rest_ack.venue_order_id
        second = cid("late")
        await venue.submit(market(second, "AAPL", 10))
        second_reports = await feed.final(second)
        await venue.cancel(rest)
        rest_reports = await feed.final(rest)
        assert rest_reports[-1].kind is ReportKind.CANCELLED
        assert rest_reports[-1].venue_order_id == rest_ack.venue_order_id
        ids = [r.exec_id for r in [*first_reports, rest_ack, *second_reports, rest_reports[-1]]]
        assert len(set(ids)) == len(ids) and all(i.startswith("SIM2-e") for i in ids)
        orders = {r.venue_order_id for r in [*first_reports, *second_reports, rest_ack]}
        assert len(orders) == 3
    finally:
        await feed.stop()
        await venue.stop()
        process.stop()


async def test_from_address_takes_name_and_data_dir_from_settings(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", venue="127.0.0.1:9878", venue_name="SIM")
    venue = FixVenue.from_address(settings.venue or "", settings)
    assert (venue.host, venue.port, venue.name) == ("127.0.0.1", 9878, "SIM")
    assert venue.config.store_dir == tmp_path / "data" / "fix-store"
    with pytest.raises(ValueError):
        FixVenue.from_address("no-port", settings)
