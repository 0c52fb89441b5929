"""Log lines as ``time level logger message key=value...``, with order and trader ids."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

CONTEXT_KEYS = ("order_id", "trader_id", "client_order_id", "status", "codes")


class ContextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds")
        parts = [at.replace("+00:00", "Z"), record.levelname.lower(), record.name,
                 record.getMessage()]
        parts += [f"{k}={getattr(record, k)}" for k in CONTEXT_KEYS if hasattr(record, k)]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ContextFormatter())
    root = logging.getLogger("ordex")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
