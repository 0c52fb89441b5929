"""WAL checkpoints beside the writer, not inside its commits.

SQLite copies the write-ahead log back into the database file (and syncs it) in whichever
connection commits when the log passes ``wal_autocheckpoint`` pages: that commit then takes
tens of milliseconds, and every order waiting on it with it. A :class:`WalCheckpointer` runs
``PRAGMA wal_checkpoint(PASSIVE)`` on a connection and thread of its own every ``interval``
seconds instead (PASSIVE never waits for the writer or readers, nor makes them wait); the
writer keeps a far higher automatic threshold only as a backstop, should the thread fall behind.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 0.5
# The writer's own threshold (pages of 4 KiB): reached only if checkpoints here fall behind.
BACKSTOP_PAGES = 20_000
BACKSTOP_PRAGMA = f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}"


class WalCheckpointer:
    def __init__(self, path: str | Path, interval: float = INTERVAL_SECONDS) -> None:
        self.path = str(path)
        self.interval = interval
        self.checkpoints = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ordex-wal-checkpoint",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:  # the writer's backstop still bounds the log
            log.warning("could not open %s to checkpoint it: %s", self.path, exc)
            return
        try:
            while not self._stop.wait(self.interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error as exc:
                    if not Path(self.path).exists():
                        return  # the store was removed under us: nothing left to copy back
                    log.warning("could not checkpoint %s: %s", self.path, exc)
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def checkpoint_beside(conn: sqlite3.Connection, path: str | Path) -> WalCheckpointer:
    """Leave the checkpoints of ``conn``'s file at ``path`` to a thread of their own; ``conn``
    itself checkpoints only at the backstop."""
    conn.execute(BACKSTOP_PRAGMA)
    return WalCheckpointer(path)
