"""The spec's Measurement Plan events, as JSON lines in ``logs/metrics/orders.jsonl``.

``emit`` only queues the line; one writer thread appends it, so the event loop never waits on the
disk. Lines are flushed as they are written (a crash loses at most what was still queued).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from ordex.clock import iso
from ordex.files import private_file

log = logging.getLogger("ordex.metrics")

SUBMITTED = "order.submitted"
EXECUTED = "order.executed"
FAILED = "order.failed"
FILLED = "order.filled"
RECOVERED = "order.recovered"
CANCELLED_BY_TRADER = "order.cancelled_by_trader"
GHOST = "order.ghost"

_STOP = object()


class MetricsLog:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.path is None or self._thread is not None:
            return
        private_file(self.path)
        self._thread = threading.Thread(target=self._write, name="ordex-metrics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout=5)

    def emit(self, event: str, at: datetime, *, order_id: UUID | str | None = None,
             trader_id: UUID | str | None = None, **fields: Any) -> None:
        if self._thread is None:
            return
        line = {"event": event, "timestamp": iso(at),
                "order_id": str(order_id) if order_id else None,
                "trader_id": str(trader_id) if trader_id else None, **fields}
        self._queue.put(json.dumps(line, default=str, separators=(",", ":")))

    def _write(self) -> None:
        assert self.path is not None
        with self.path.open("a", encoding="utf-8", buffering=1) as out:
            while True:
                line = self._queue.get()
                if line is _STOP:
                    return
                try:
                    out.write(f"{line}\n")
                except OSError:
                    log.exception("could not write a metrics event")
