"""kill -9 ordex at random moments while traders submit orders, restart it each time, then check:
every acknowledged order is stored, no order reached the venue twice, the venue has no order ordex
does not know, and the books (positions, cash, fills, execution log) balance against the venue.

Sizes: ``ORDEX_CRASH_ORDERS`` (5000) orders with ``ORDEX_CRASH_KILLS`` (20) kills;
``ORDEX_CRASH_SEED`` picks the orders and the kill points (the timing is the machine's).
The harness is ``tests/support/crash.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.crash import CrashRun

ORDERS = int(os.environ.get("ORDEX_CRASH_ORDERS", "5000"))
KILLS = int(os.environ.get("ORDEX_CRASH_KILLS", "20"))
SEED = int(os.environ.get("ORDEX_CRASH_SEED", "20261126"))


async def test_crash_kill9_under_load_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    print(f"\ncrash run: {ORDERS} orders, {KILLS} kills, seed {SEED}")
    report = await CrashRun(tmp_path, orders=ORDERS, kills=KILLS, seed=SEED).run()
    print(report.details())
    print(report.summary_line())
    assert report.submitted == ORDERS and report.kills >= KILLS, report.summary_line()
    assert (len(report.lost), len(report.duplicated), len(report.ghosts),
            report.violation_count) == (0, 0, 0, 0), report.summary_line()
