"""kill -9 ordex at random moments while traders submit orders, restart it each time, then check:
every acknowledged order is stored, no order reached the venue twice, the venue has no order ordex
does not know, the books (positions, cash, fills, execution log) balance against the venue, every
order is final or legitimately working, reserved cash is what the working orders need, and once
every working order is cancelled nothing stays reserved.

Two venues: ``ordex venue`` as its own process (it lives through ordex's deaths), and the
embedded default (the exchange inside ``ordex serve`` dies with it and restarts from its journal
in the data dir). Sizes: ``ORDEX_CRASH_ORDERS`` (5000) orders with ``ORDEX_CRASH_KILLS`` (20)
kills against ``ordex venue``; ``ORDEX_CRASH_EMBEDDED_ORDERS`` (1500) with
``ORDEX_CRASH_EMBEDDED_KILLS`` (8) against the embedded default (the acceptance run: 3000 and
20). ``ORDEX_CRASH_SEED`` picks the orders and the kill points (the timing is the machine's).
The harness is ``tests/support/crash.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.crash import CrashRun

SEED = int(os.environ.get("ORDEX_CRASH_SEED", "20261126"))
SIZES = {
    "fix": (int(os.environ.get("ORDEX_CRASH_ORDERS", "2000")),
            int(os.environ.get("ORDEX_CRASH_KILLS", "10"))),
    "embedded": (int(os.environ.get("ORDEX_CRASH_EMBEDDED_ORDERS", "1500")),
                 int(os.environ.get("ORDEX_CRASH_EMBEDDED_KILLS", "8"))),
}


@pytest.mark.parametrize("venue", ["fix", "embedded"])
async def test_crash_kill9_under_load_loses_and_duplicates_nothing(tmp_path: Path,
                                                                   venue: str) -> None:
    orders, kills = SIZES[venue]
    print(f"\ncrash run against the {venue} venue: {orders} orders, {kills} kills, seed {SEED}")
    report = await CrashRun(tmp_path, orders=orders, kills=kills, seed=SEED, venue=venue).run()
    print(report.details())
    print(f"{venue}: {report.summary_line()}")
    assert report.submitted == orders and report.kills >= kills, report.summary_line()
    assert (len(report.lost), len(report.duplicated), len(report.ghosts),
            report.violation_count) == (0, 0, 0, 0), report.summary_line()
