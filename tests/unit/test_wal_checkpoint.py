"""Checkpoints of ordex's SQLite store run beside the writer, not inside its commits."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from ordex.store.checkpoint import BACKSTOP_PAGES, BACKSTOP_PRAGMA, WalCheckpointer

ROW = b"x" * 3000  # about one 4 KiB page per row


def _writer(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(BACKSTOP_PRAGMA)
    conn.execute("CREATE TABLE t (v BLOB)")
    return conn


def _commit_pages(conn: sqlite3.Connection, pages: int) -> None:
    for _ in range(pages // 100):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO t VALUES (?)", [(ROW,)] * 100)
        conn.execute("COMMIT")


def test_the_writer_alone_leaves_its_commits_in_the_log_up_to_the_backstop(
        tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    conn = _writer(path)
    _commit_pages(conn, 2000)  # twice SQLite's default threshold, far below the backstop
    assert 2000 < BACKSTOP_PAGES
    assert path.stat().st_size < 100_000  # nothing was copied back by a commit
    conn.close()


def test_the_checkpointer_copies_the_log_back_while_the_writer_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    conn = _writer(path)
    checkpointer = WalCheckpointer(path, interval=0.02)
    try:
        _commit_pages(conn, 2000)
        deadline = time.monotonic() + 10
        while (path.stat().st_size < 4_000_000 or not checkpointer.checkpoints) \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        assert path.stat().st_size >= 4_000_000  # the 2,000 pages are in the database file
        assert checkpointer.checkpoints > 0
        _commit_pages(conn, 200)  # and the writer was never held up or refused
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 2200
    finally:
        checkpointer.stop()
        conn.close()


def test_a_store_that_cannot_be_opened_stops_the_checkpointer_quietly(tmp_path: Path) -> None:
    checkpointer = WalCheckpointer(tmp_path / "missing" / "store.db", interval=0.01)
    time.sleep(0.05)
    checkpointer.stop()
    assert checkpointer.checkpoints == 0
