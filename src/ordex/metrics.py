"""The spec's Measurement Plan events, as JSON lines in ``logs/metrics/orders.jsonl``.

Most are read off the journal's committed rows (``projected``); what happens outside any order's
journal (a ghost at a venue, a venue refusing a second copy, a recovery's finding) is emitted
where it is seen. ``emit`` and ``record`` only queue; one writer thread formats and appends the
lines every ``FLUSH_SECONDS``, so the event loop never waits on the disk and hands nothing to
another thread per commit (a wake-up of the writer for each commit cost more than the line). A
crash loses at most what was still queued; the journal, not this file, is the record.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson

from ordex.clock import iso
from ordex.domain.journal import Actor, JournalEntry, LogAction
from ordex.files import private_file

log = logging.getLogger("ordex.metrics")

SUBMITTED = "order.submitted"
EXECUTED = "order.executed"
FAILED = "order.failed"
FILLED = "order.filled"
RECOVERED = "order.recovered"
CANCELLED_BY_TRADER = "order.cancelled_by_trader"
GHOST = "order.ghost"

FLUSH_SECONDS = 0.05


class MetricsLog:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._queue: deque[object] = deque()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.path is None or self._thread is not None:
            return
        private_file(self.path)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._write, name="ordex-metrics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            thread.join(timeout=5)

    def emit(self, event: str, at: datetime, *, order_id: UUID | str | None = None,
             trader_id: UUID | str | None = None, **fields: Any) -> None:
        if self._thread is None:
            return
        self._queue.append(_line(event, at, order_id, trader_id, fields))

    def record(self, journal: list[JournalEntry]) -> None:
        """The Measurement Plan's events in a commit's journal rows: one hand-over per commit;
        the writer thread picks the rows out and formats them."""
        if self._thread is not None:
            self._queue.append(journal)

    def _write(self) -> None:
        assert self.path is not None
        with self.path.open("a", encoding="utf-8") as out:
            while True:
                stopping = self._stopping.wait(FLUSH_SECONDS)
                lines: list[str] = []
                while self._queue:
                    item = self._queue.popleft()
                    try:
                        if isinstance(item, list):
                            lines.extend(_line(event, e.timestamp, e.order_id, e.trader_id, fields)
                                         for event, e, fields in projected(item))
                        else:
                            lines.append(str(item))
                    except Exception:
                        log.exception("could not write a metrics event")
                if lines:
                    try:
                        out.write("".join(f"{line}\n" for line in lines))
                        out.flush()
                    except OSError:
                        log.exception("could not write %d metrics events", len(lines))
                if stopping:
                    return


def _line(event: str, at: datetime, order_id: UUID | str | None,
          trader_id: UUID | str | None, fields: dict[str, Any]) -> str:
    return orjson.dumps({"event": event, "timestamp": iso(at),
                         "order_id": str(order_id) if order_id else None,
                         "trader_id": str(trader_id) if trader_id else None, **fields},
                        default=str).decode()


Metric = tuple[str, JournalEntry, dict[str, Any]]


def projected(journal: Iterable[JournalEntry]) -> Iterator[Metric]:
    """(metric, row, fields) for each journal row the Measurement Plan counts."""
    for e in journal:
        shown = e.payload or {}
        retries = max(int(shown.get("send_attempts") or 1) - 1, 0)
        if e.action is LogAction.SUBMIT:
            yield SUBMITTED, e, {"symbol": e.symbol, "side": e.details.get("side"),
                                 "quantity": str(e.quantity), "type": e.details.get("type"),
                                 "retry_count": 0, "retry_of": e.details.get("retry_of")}
        elif e.action is LogAction.EXECUTE:
            yield EXECUTED, e, {"venue": e.venue,
                                "retry_count": int(e.details.get("attempt", 1)) - 1}
        elif e.event == "filled":
            yield FILLED, e, {"venue": e.venue, "retry_count": retries}
        elif e.action is LogAction.CANCEL and e.actor is Actor.TRADER:
            yield CANCELLED_BY_TRADER, e, {"status": e.status,
                                           "filled_quantity": shown.get("filled_quantity"),
                                           "retry_count": retries}
        elif e.action is LogAction.FAIL:
            yield FAILED, e, {"reason": e.reason, "retry_count": retries}
        elif e.action is LogAction.EXPIRE and e.actor is Actor.ENGINE:
            yield FAILED, e, {"reason": e.reason, "status": "expired"}
