"""The simulated exchange's journal: a new exchange on the same file starts where the old one
stopped (resting book, fills, id counters), and nothing is reported before it is on disk."""

from __future__ import annotations

import sqlite3
import time
from decimal import Decimal
from pathlib import Path

from ordex.domain.orders import Side, TimeInForce
from ordex.store.checkpoint import BACKSTOP_PAGES
from ordex.venues.base import ReportKind, VenueOrderState
from ordex.venues.simulated import SimulatedExchange
from ordex.venues.simulated.journal import ExchangeJournal, open_journal
from tests.unit.test_sim_support import INSTRUMENTS, QUIET, T0, ManualClock, kinds, limit, market

D = Decimal
BUY, SELL = Side.BUY, Side.SELL


def journaled(path: Path, clock: ManualClock | None = None) -> SimulatedExchange:
    return SimulatedExchange("SIM", INSTRUMENTS, config=QUIET, seed=7,
                             clock=clock or ManualClock(), journal=ExchangeJournal(path))


def test_ids_keep_counting_across_restarts(tmp_path: Path) -> None:
    """Before the journal, a new exchange numbered exec ids and order ids from 1 again, so a
    client that de-duplicates fills by exec id dropped every fill after a restart."""
    path = tmp_path / "exchange-SIM.db"
    seen_exec, seen_orders = set(), set()
    for run in range(3):
        ex = journaled(path)
        for i in range(3):
            reports = ex.submit(market(f"r{run}-{i}", BUY, "5"))
            assert kinds(reports) == [ReportKind.ACK, ReportKind.FILL]
            seen_exec |= {r.exec_id for r in reports}
            seen_orders |= {r.venue_order_id for r in reports}
        ex.close()
    assert len(seen_exec) == 18 and len(seen_orders) == 9


def test_resting_orders_survive_and_can_be_cancelled_or_filled(tmp_path: Path) -> None:
    path = tmp_path / "exchange-SIM.db"
    ex = journaled(path)
    ex.submit(limit("gtc", BUY, "30", "99.50", tif=TimeInForce.GTC))
    ex.submit(limit("day", SELL, "20", "100.50", tif=TimeInForce.DAY))
    ex.move_market("AAPL", D("99.50"))  # asks 99.51, 99.52, 99.53: the GTC bid still rests
    ex.submit(limit("part", BUY, "350", "99.53"))  # takes the 300 shown, 50 rest at 99.53
    before = {o.client_order_id: o for o in ex.orders()}
    assert before["part"].filled_quantity == D(300)
    ex.close()

    again = journaled(path)
    after = {o.client_order_id: o for o in again.orders()}
    assert {k: v for k, v in after.items() if k != "part"} == \
        {k: v for k, v in before.items() if k != "part"}
    # the market is where it was; its fresh liquidity crosses what rested at 99.53: the rest
    # of "part" fills as the exchange starts, and those reports wait for the adapter
    assert again.quote("AAPL").last is not None
    assert [(r.client_order_id, r.last_quantity, r.last_price, r.cum_quantity)
            for r in again.restored_reports] == [("part", D(50), D("99.53"), D(350))]
    assert after["part"].state is VenueOrderState.FILLED
    assert {o.client_order_id for o in again.open_orders()} == {"gtc", "day"}
    cancelled = again.cancel("day")
    assert kinds(cancelled) == [ReportKind.CANCELLED]
    reports = again.move_market("AAPL", D("99.00"))  # synthetic asks now cross the GTC bid
    filled = [r for r in reports if r.client_order_id == "gtc"]
    assert sum((r.last_quantity for r in filled), D(0)) == D(30)
    assert again.query("gtc").state is VenueOrderState.FILLED  # type: ignore[union-attr]
    assert again.query("day").state is VenueOrderState.CANCELLED  # type: ignore[union-attr]
    # a copy of an order it already has is still refused as a duplicate
    assert again.submit(market("gtc", BUY, "1"))[0].duplicate
    again.close()

    third = journaled(path)
    assert third.open_orders() == [] and third.restored_reports == []
    assert [f.exec_id for f in third.fills_since(T0)] == [f.exec_id for f in again.fills_since(T0)]
    third.close()


def test_every_report_is_on_disk_before_it_is_returned(tmp_path: Path) -> None:
    """A kill -9 right after a call returns must not lose what it reported: another
    connection reads the ack, the fill and the counters at once."""
    path = tmp_path / "exchange-SIM.db"
    ex = journaled(path)
    reports = ex.submit(market("m1", BUY, "150"))
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = con.execute("SELECT status, filled FROM orders WHERE client_order_id='m1'")
        assert rows.fetchall() == [("filled", "150")]
        execs = {r[0] for r in con.execute("SELECT exec_id FROM fills")}
        assert execs == {r.exec_id for r in reports if r.kind is ReportKind.FILL}
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        assert int(meta["exec_seq"]) == len(reports)
        ex.cancel("nobody")  # a refusal hands out an exec id too
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        assert int(meta["exec_seq"]) == len(reports) + 1
    finally:
        con.close()
        ex.close()
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_journal_started_on_a_used_data_dir_mints_ids_no_older_venue_used(
        tmp_path: Path) -> None:
    """An ordex store made before the journal existed holds SIM-e1...: a new journal must not
    number from SIM-e1 again."""
    (tmp_path / "ordex.db").write_bytes(b"")
    clock = ManualClock()
    ex = SimulatedExchange("SIM", INSTRUMENTS, config=QUIET, clock=clock,
                           journal=open_journal(tmp_path, "SIM", clock.now))
    exec_id = ex.submit(market("m1", BUY, "1"))[0].exec_id
    ex.close()
    assert exec_id.startswith("SIM-20260105143000-e")
    fresh = tmp_path / "fresh"
    ex = SimulatedExchange("SIM", INSTRUMENTS, config=QUIET, clock=clock,
                           journal=open_journal(fresh, "SIM", clock.now))
    assert ex.submit(market("m1", BUY, "1"))[0].exec_id == "SIM-e1"
    ex.close()


# ---- ``ordex venue``: the run count behind the ids the FIX server mints itself -----------------


def test_venue_runs_are_counted_durably_and_a_damaged_count_is_refused(tmp_path: Path) -> None:
    """The count was written in place: a kill during the write left an empty file, read back as
    run 1, and the server's own ids (SIM-s1-r1...) repeated. It is now replaced atomically, and
    a count that cannot be read stops the venue instead of starting again from 1."""
    import pytest

    from ordex.venues.fix.server import _next_run

    assert [_next_run(tmp_path, "SIM") for _ in range(3)] == [1, 2, 3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["venue-SIM.json"]
    (tmp_path / "venue-SIM.json").write_text("")  # what a kill in mid-write used to leave
    with pytest.raises(OSError, match="counts this venue's runs"):
        _next_run(tmp_path, "SIM")


def test_a_save_writes_only_what_changed(tmp_path: Path) -> None:
    """A submit in one symbol rewrites that symbol's market row (its last price) and the
    counters it moved, not every market and counter; a new exchange still reads the price."""
    path = tmp_path / "exchange-SIM.db"
    ex = journaled(path)
    saved: list[tuple[dict[str, str], list[tuple[str, Decimal, Decimal | None]]]] = []
    journal = ex._journal
    assert journal is not None
    real_save = journal.save

    def spy(meta, orders, fills, markets):  # type: ignore[no-untyped-def]
        markets = list(markets)
        saved.append((dict(meta), markets))
        real_save(meta, orders, fills, markets)

    journal.save = spy  # type: ignore[method-assign]
    ex.submit(market("m1", BUY, "5", symbol="MSFT"))
    [(meta, markets)] = saved
    assert set(meta) == {"exec_seq", "order_seq"}
    assert [m[0] for m in markets] == ["MSFT"]
    last = markets[0][2]
    ex.close()
    again = journaled(path)
    try:
        assert again.quote("MSFT").last == last
    finally:
        again.close()


def test_the_journal_leaves_its_wal_checkpoints_to_a_thread_of_its_own(tmp_path: Path) -> None:
    """Its commits run on the event loop: copying the log back inside one would stall every
    order waiting behind it."""
    path = tmp_path / "exchange-SIM.db"
    journal = ExchangeJournal(path)
    try:
        (pages,) = journal._con.execute("PRAGMA wal_autocheckpoint").fetchone()
        assert pages == BACKSTOP_PAGES
        journal.save({f"k{i}": "x" * 3000 for i in range(2000)}, [], [], [])
        deadline = time.monotonic() + 10
        while journal._checkpoints.checkpoints < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert journal._checkpoints.checkpoints >= 2
        assert path.stat().st_size > 4_000_000  # the 2,000 pages were copied back
    finally:
        journal.close()
    assert not journal._checkpoints._thread.is_alive()
