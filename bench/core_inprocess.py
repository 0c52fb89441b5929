"""Orders through ordex's own services in one process, without HTTP: validation, risk, the durable
store, the execution engine, the embedded exchange's matching and the fills.

``plan_orders`` makes the order list that NautilusTrader's backtest (``core_nautilus``) runs too:
the same count, symbols, sides, quantities and market/limit mix. Every order is marketable (a limit
buy 2% above the reference price, a limit sell 2% below), so every one of them fills.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from pathlib import Path
from uuid import UUID

import orjson

from ordex.bootstrap import Services, build, prepare
from ordex.bus.memory import ORDER_EVENTS
from ordex.config import Settings
from ordex.domain.accounts import RiskLimits, Role
from ordex.domain.commands import SubmitOrder
from ordex.domain.instruments import Instrument, InstrumentStatus
from ordex.domain.orders import OrderType, Side
from ordex.services.demo import demo_instruments

TERMINAL = {"filled", "rejected", "cancelled", "expired", "failed"}
QUANTITIES = (Decimal(1), Decimal(2), Decimal(5), Decimal(10))
LIMIT_MARGIN = Decimal("0.02")  # marketable: inside the 10% price band, beyond the spread
HELD = Decimal(100_000)  # shares of every symbol each trader starts with, so that sells fill


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    index: int
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    limit_price: Decimal | None
    reference: Decimal
    tick: Decimal


def active_instruments() -> list[Instrument]:
    return [i for i in demo_instruments() if i.status is InstrumentStatus.ACTIVE]


def plan_orders(count: int) -> list[PlannedOrder]:
    """Symbols in turn over the demo's active ones; buy, sell alternating; market and limit in
    pairs (so each side gets both); quantities 1, 2, 5, 10 in turn."""
    universe = active_instruments()
    out = []
    for i in range(count):
        ins = universe[i % len(universe)]
        side = Side.BUY if i % 2 == 0 else Side.SELL
        kind = OrderType.MARKET if (i // 2) % 2 == 0 else OrderType.LIMIT
        limit = None
        if kind is OrderType.LIMIT:
            if side is Side.BUY:
                raw, rounding = ins.reference_price * (1 + LIMIT_MARGIN), ROUND_DOWN
            else:
                raw, rounding = ins.reference_price * (1 - LIMIT_MARGIN), ROUND_UP
            limit = (raw / ins.tick_size).quantize(Decimal(1), rounding=rounding) * ins.tick_size
        out.append(PlannedOrder(i, ins.symbol, side, kind, QUANTITIES[(i // 4) % 4], limit,
                                ins.reference_price, ins.tick_size))
    return out


@dataclass
class InProcessResult:
    orders: int
    filled: int
    other_final: int
    errors: int
    seconds: float
    cpu_seconds: float  # this process's, over the same span (it runs everything but SQLite's
    # and the metrics log's threads, which process time counts too)
    first_error: str | None = None

    @property
    def rate(self) -> float:
        return self.filled / self.seconds if self.seconds else float("nan")


async def run_ordex(plan: list[PlannedOrder], traders: int, concurrency: int,
                    warmup: int) -> InProcessResult:
    """Wire ordex with ``bootstrap.build`` on a temporary SQLite store and the embedded exchange
    (no market ticks), submit ``plan`` through ``OrderService.submit`` from ``concurrency``
    tasks, and time it from the first submit to the last order's final event."""
    tmp = Path(tempfile.mkdtemp(prefix="ordex-bench-inproc-"))
    try:
        settings = Settings(data_dir=tmp / "data", database_url=None, seed_demo=False,
                            execution_enabled=True, sim_tick_seconds=0)
        services = build(settings)
        await prepare(services)
        await services.start()
        try:
            return await _drive(services, plan, traders, concurrency, warmup)
        finally:
            await services.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def _drive(services: Services, plan: list[PlannedOrder], traders: int, concurrency: int,
                 warmup: int) -> InProcessResult:
    limits = RiskLimits(max_position_shares=Decimal(10_000_000),
                        max_position_notional=Decimal(10_000_000_000),
                        max_order_notional=Decimal(100_000_000),
                        daily_loss_limit=Decimal(1_000_000_000), max_open_orders=1_000_000)
    held = {i.symbol: (HELD, i.reference_price) for i in active_instruments()}
    ids: list[UUID] = []
    for n in range(traders + 1):
        issued = await services.accounts.create(f"inproc-{n}", Role.TRADER,
                                                Decimal(1_000_000_000), limits, positions=held)
        ids.append(issued.account.id)
    warm_id, trader_ids = ids[0], ids[1:]
    final: dict[str, str] = {}
    waiting: list[tuple[set[str], asyncio.Event]] = []

    async def until_final(ids: set[str], seconds: float) -> None:
        """Until every order of ``ids`` has had its final event (or ``seconds`` passed)."""
        if ids.issubset(final):
            return
        done = asyncio.Event()
        waiting.append((ids, done))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), seconds)

    with services.bus.subscribe(ORDER_EVENTS) as sub:
        async def watch() -> None:
            while True:
                frame = await sub.next_within(3600)
                if frame is None:
                    continue
                message = orjson.loads(frame.own_text)
                if message.get("status") in TERMINAL:
                    final.setdefault(str(message["order_id"]), str(message["status"]))
                    for ids, done in waiting:
                        if not done.is_set() and ids.issubset(final):
                            done.set()

        watcher = asyncio.create_task(watch())
        try:
            errors: list[str] = []

            async def submit_all(orders: list[tuple[UUID, PlannedOrder]]) -> set[str]:
                queue = list(reversed(orders))
                made: set[str] = set()

                async def worker() -> None:
                    while queue:
                        trader, o = queue.pop()
                        try:
                            done = await services.orders.submit(SubmitOrder(
                                trader, o.symbol, o.side, o.type, o.quantity,
                                limit_price=o.limit_price))
                        except Exception as exc:
                            errors.append(f"{type(exc).__name__}: {exc}")
                            continue
                        made.add(str(done.order.id))

                await asyncio.gather(*(worker() for _ in range(concurrency)))
                return made

            await until_final(await submit_all([(warm_id, o) for o in plan_orders(warmup)]), 30)
            errors.clear()
            t0, cpu0 = time.perf_counter(), time.process_time()
            wanted = await submit_all([(trader_ids[i % len(trader_ids)], o)
                                       for i, o in enumerate(plan)])
            await until_final(wanted, 120)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
    statuses = [final.get(i) for i in wanted]
    filled = sum(1 for s in statuses if s == "filled")
    other = sum(1 for s in statuses if s is not None and s != "filled")
    return InProcessResult(len(plan), filled, other, len(errors), seconds, cpu,
                           errors[0] if errors else None)
