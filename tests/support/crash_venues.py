"""The venue of a crash run, and how the run reads its truth.

* ``FixVenueSide``: ``ordex venue`` as its own process, living through ordex's deaths; its truth
  is its admin API (``GET /orders``), and it is frozen by halting every symbol.
* ``EmbeddedVenueSide``: the embedded default, the exchange inside ``ordex serve``, dying and
  restarting with it on the same data dir. Its truth is its journal (``exchange-SIM.db`` in the
  data dir, the file the exchange itself restarts from), read with ``sqlite3`` while ordex runs
  (WAL readers do not block it) and after the final stop. It is frozen by starting ordex the
  last time with the market ticker off: nothing trades any more but what traders send.

Both give orders in the admin API's shape: ``client_order_id``, ``venue_order_id``, ``symbol``,
``side``, ``quantity``, ``status``, ``filled_quantity`` and ``fills`` (each with ``exec_id``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any, Protocol

from tests.support.venue_process import VenueProcess

SYMBOLS = ["AAPL", "MSFT", "KO", "INTC", "BAC", "WMT"]


class VenueSide(Protocol):
    kind: str

    @property
    def port(self) -> int | None:
        """The FIX port ordex connects to; None for the embedded venue."""

    def ordex_env(self, final: bool) -> dict[str, str]:
        """Settings for ``ordex serve`` (the final start, once the load is over, if ``final``)."""

    async def start(self) -> None: ...

    def stop(self) -> None: ...

    async def orders(self) -> list[dict[str, Any]]: ...

    async def freeze(self) -> None:
        """Nothing trades at the venue any more (but what ordex still sends)."""

    async def info(self) -> dict[str, object]: ...


class FixVenueSide:
    kind = "fix"

    def __init__(self, workdir: Path, tick_seconds: float) -> None:
        self.process = VenueProcess(workdir / "venue", tick_seconds=tick_seconds,
                                    log_messages=False)

    @property
    def port(self) -> int | None:
        return self.process.port

    def ordex_env(self, final: bool) -> dict[str, str]:
        return {}

    async def start(self) -> None:
        await asyncio.to_thread(self.process.start)

    def stop(self) -> None:
        self.process.stop()

    async def orders(self) -> list[dict[str, Any]]:
        return list((await self.process.admin("GET", "/orders"))["orders"])

    async def freeze(self) -> None:
        for symbol in SYMBOLS:
            await self.process.admin("POST", f"/halt/{symbol}", {"reason": "crash run over"})

    async def info(self) -> dict[str, object]:
        snapshot = await self.process.admin("GET", "/snapshot")
        return {"venue_duplicates_refused": snapshot.get("duplicates_refused")}


class EmbeddedVenueSide:
    kind = "embedded"

    def __init__(self, ordex_data_dir: Path, tick_seconds: float, name: str = "SIM") -> None:
        self.journal = ordex_data_dir / f"exchange-{name}.db"
        self.tick_seconds = tick_seconds

    @property
    def port(self) -> int | None:
        return None

    def ordex_env(self, final: bool) -> dict[str, str]:
        return {"ORDEX_SIM_TICK_SECONDS": "0" if final else str(self.tick_seconds)}

    async def start(self) -> None:
        """It starts with ordex."""

    def stop(self) -> None:
        """It stops with ordex."""

    async def orders(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(read_journal, self.journal)

    async def freeze(self) -> None:
        """Done by the final start (``ordex_env(final=True)``)."""

    async def info(self) -> dict[str, object]:
        meta = await asyncio.to_thread(_journal_meta, self.journal)
        return {"venue_duplicates_refused": int(meta.get("duplicates_refused", 0)),
                "venue_exec_ids_issued": int(meta.get("exec_seq", 0))}


def _connect(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise FileNotFoundError(f"no exchange journal at {path}")
    return sqlite3.connect(path, timeout=30)


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Every order the embedded exchange received, oldest first, with its fills."""
    con = _connect(path)
    try:
        fills: dict[str, list[dict[str, Any]]] = {}
        for exec_id, cl_ord_id, quantity, price in con.execute(
                "SELECT exec_id, client_order_id, quantity, price FROM fills ORDER BY seq"):
            fills.setdefault(cl_ord_id, []).append(
                {"exec_id": exec_id, "quantity": quantity, "price": price})
        return [{"client_order_id": r[0], "venue_order_id": r[1], "symbol": r[2], "side": r[3],
                 "type": r[4], "time_in_force": r[5], "quantity": r[6], "status": r[7],
                 "filled_quantity": r[8], "fills": fills.get(r[0], [])}
                for r in con.execute(
                    "SELECT client_order_id, venue_order_id, symbol, side, type, time_in_force, "
                    "quantity, status, filled FROM orders ORDER BY seq")]
    finally:
        con.close()


def _journal_meta(path: Path) -> dict[str, str]:
    con = _connect(path)
    try:
        return dict(con.execute("SELECT key, value FROM meta").fetchall())
    finally:
        con.close()
