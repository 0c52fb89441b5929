"""Order submission latency: the in-memory checks, and POST /v1/orders over HTTP.

Run from the project root (see bench/README.md)::

    .venv/bin/python -m bench.bench_submit            # full run (about 3 minutes on 2 cores)
    .venv/bin/python -m bench.bench_submit --quick    # smoke run

1. In process: ``validate`` then ``check_risk`` (what ``OrderService._submit_in`` does in memory,
   without I/O) on realistic inputs; p50/p95/p99 in milliseconds.
2. Over HTTP: the real service (``ordex serve``) as a subprocess on SQLite and on a throwaway
   PostgreSQL server, measured with ``httpx.AsyncClient`` from this process with one trader at a
   time and with N traders at once (each with its own account and key, each sending its orders
   one after the other), plus one trader sending many orders in a row (open-order growth).
3. Paced (open loop): N traders each sending one order every N/rate seconds from a random phase,
   so that the aggregate rate is ``--paced-rate`` orders/s, for ``--paced-seconds``; latency
   counts from the intended send time. ``--paced-sweep`` repeats it at several rates;
   ``--paced-baseline`` adds one trader at a time at the same pace, to compare with.

Everything binds to 127.0.0.1. Server processes and temporary directories are removed on exit,
also after an error, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import platform
import random
import signal
import sys
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx

from bench.servers import LOOP, ROOT, ServiceProcess, run_async, start_service
from ordex.domain.accounts import Account, RiskLimits, Role
from ordex.domain.commands import SubmitOrder
from ordex.domain.errors import Violation
from ordex.domain.instruments import Instrument
from ordex.domain.orders import Order, OrderStatus, OrderType, Side, TimeInForce
from ordex.domain.risk import check_risk
from ordex.domain.validation import AccountState, PricePolicy, reserve_price, validate
from ordex.services.demo import demo_instruments

ORDER_BODY = json.dumps({"symbol": "AAPL", "side": "buy", "quantity": "1", "type": "limit",
                         "limit_price": "189.00"}).encode()
TRADER_CASH = "100000000"
# Raised per trader through the admin API so that neither limit interferes with the measurement.
RAISED_LIMITS = {"rate_limit_per_minute": 100_000, "max_open_orders": 100_000}
SPEC_TARGET_MS = 100.0
AIM_P99_MS = 0.5
NFR003_MAX_RATIO = 1.05  # p95 with 100 concurrent traders at most 5% above one trader's
SOLO_SPACING_S = 0.05  # between the orders of the one-at-a-time paced baseline


# --------------------------------------------------------------------------------------------
# figures


def percentile(ordered: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default) on sorted data."""
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class Summary:
    n: int
    p50: float
    p95: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, values_ms: Sequence[float]) -> Summary:
        ordered = sorted(values_ms)
        mean = sum(ordered) / len(ordered) if ordered else float("nan")
        return cls(len(ordered), percentile(ordered, 50), percentile(ordered, 95),
                   percentile(ordered, 99), ordered[-1] if ordered else float("nan"), mean)


def fmt(ms: float) -> str:
    return f"{ms:.4f}" if ms < 1 else f"{ms:.2f}"


# --------------------------------------------------------------------------------------------
# 1. in process


def make_state(open_count: int, instruments: dict[str, Instrument]) -> AccountState:
    """A trader with four positions and ``open_count`` working orders (a third of them sells)."""
    now = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
    trader = UUID(int=1)
    account = Account(id=trader, name="bench", role=Role.TRADER, cash=Decimal("1000000"),
                      limits=RiskLimits(), day_start_equity=Decimal("1150000"),
                      trading_day=now.date())
    positions = {"AAPL": Decimal(200), "MSFT": Decimal(50), "TSLA": Decimal(40),
                 "NVDA": Decimal(300)}
    buy_symbols = ["AAPL", "GOOGL", "AMZN", "NVDA", "JPM", "V", "KO", "PEP", "INTC", "AMD",
                   "BAC", "CSCO", "WMT"]
    sell_symbols = list(positions)
    orders: list[Order] = []
    for i in range(open_count):
        sell = i % 3 == 2
        symbol = sell_symbols[(i // 3) % len(sell_symbols)] if sell else \
            buy_symbols[i % len(buy_symbols)]
        ref = instruments[symbol].reference_price
        quantity = Decimal(2) if sell else Decimal(5 + (i * 7) % 46)
        limit = (ref * Decimal("1.01") if sell else ref * Decimal("0.99")).quantize(
            Decimal("0.01"))
        partial = i % 5 == 4
        orders.append(Order(
            id=UUID(int=1000 + i), trader_id=trader, symbol=symbol,
            side=Side.SELL if sell else Side.BUY, type=OrderType.LIMIT, quantity=quantity,
            time_in_force=TimeInForce.DAY, created_at=now, updated_at=now, limit_price=limit,
            reserve_price=limit,
            status=OrderStatus.PARTIALLY_FILLED if partial else OrderStatus.ACCEPTED,
            filled_quantity=Decimal(1) if partial else Decimal(0),
            average_price=limit if partial else None,
        ))
    return AccountState(account, positions, orders, daily_pnl=Decimal("-1250.40"))


def make_commands() -> list[SubmitOrder]:
    """A realistic mix; every one of them passes validation and risk."""
    trader = UUID(int=1)
    d = Decimal
    return [
        SubmitOrder(trader, "AAPL", Side.BUY, OrderType.LIMIT, d("10"), limit_price=d("189.00")),
        SubmitOrder(trader, "MSFT", Side.SELL, OrderType.LIMIT, d("10"), limit_price=d("416.00")),
        SubmitOrder(trader, "NVDA", Side.BUY, OrderType.MARKET, d("25")),
        SubmitOrder(trader, "KO", Side.BUY, OrderType.LIMIT, d("100"), limit_price=d("62.80"),
                    stop_loss=d("60.00"), take_profit=d("66.00"),
                    time_in_force=TimeInForce.GTC),
        SubmitOrder(trader, "AAPL", Side.SELL, OrderType.LIMIT, d("50"), limit_price=d("190.10")),
    ]


def check_order(cmd: SubmitOrder, instrument: Instrument | None, state: AccountState,
                policy: PricePolicy) -> list[Violation]:
    """The in-memory part of ``OrderService._submit_in``, step for step."""
    violations = validate(cmd, instrument, state, policy)
    if instrument is not None:
        unit = reserve_price(cmd, instrument, policy)
        if not violations:
            violations = check_risk(cmd, unit, instrument.lot_size, state)
    return violations


def bench_in_process(iterations: int, open_count: int) -> Summary:
    instruments = {i.symbol: i for i in demo_instruments()}
    state = make_state(open_count, instruments)
    policy = PricePolicy()
    commands = make_commands()
    work = [(cmd, instruments[cmd.symbol]) for cmd in commands]
    for cmd, instrument in work:
        found = check_order(cmd, instrument, state, policy)
        if found:
            raise SystemExit(f"bench input unexpectedly refused ({cmd}): "
                             + "; ".join(v.message for v in found))
    for i in range(min(iterations, 2000)):  # warm-up
        cmd, instrument = work[i % len(work)]
        check_order(cmd, instrument, state, policy)
    clock = time.perf_counter_ns
    samples: list[float] = []
    record = samples.append
    for i in range(iterations):
        cmd, instrument = work[i % len(work)]
        t0 = clock()
        check_order(cmd, instrument, state, policy)
        record((clock() - t0) / 1e6)
    return Summary.of(samples)


# --------------------------------------------------------------------------------------------
# 2. over HTTP


@dataclass
class PhaseResult:
    traders: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    wall_s: float = 0.0
    server_cpu_s: float | None = None
    client_cpu_s: float = 0.0

    @property
    def ok(self) -> int:
        return len(self.latencies_ms)

    @property
    def throughput(self) -> float:
        return self.ok / self.wall_s if self.wall_s else float("nan")

    def per_order(self, seconds: float | None) -> float | None:
        return None if seconds is None or not self.ok else seconds / self.ok * 1000

    def note(self, error: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or error


@dataclass
class PacedResult(PhaseResult):
    """An open-loop run for ``seconds``: ``accounts`` traders, each sending an order every
    ``interval_s``, ``rate`` orders/s in all. Concurrent traders start from random phases; a
    ``solo`` run (the baseline at the same pace, ``traders`` 1) staggers its accounts evenly, so
    that one order is out at a time.
    """

    rate: float = 0.0
    seconds: float = 0.0
    interval_s: float = 0.0
    accounts: int = 0
    solo: bool = False
    lags_ms: list[float] = field(default_factory=list)  # actual minus intended send time
    held: int = 0  # sends due while the trader's previous order was still unanswered
    started: float = 0.0  # perf_counter of the schedule's start
    last_done: float = 0.0  # perf_counter of the last answer

    @property
    def label(self) -> str:
        return f"{self.traders}@{self.rate:.3g}"

    @property
    def throughput(self) -> float:
        """Achieved rate: accepted orders from the schedule's start to the last answer."""
        span = self.last_done - self.started
        return self.ok / span if span > 0 else float("nan")


@dataclass
class BackendResult:
    backend: str
    setup_s: float
    floor: Summary
    single: PhaseResult
    many: PhaseResult
    growth: PhaseResult
    single_accounts: int
    paced: list[PacedResult] = field(default_factory=list)
    server_log_tail: str = ""

    def phases(self) -> list[tuple[str, PhaseResult]]:
        return [("1 trader", self.single), ("concurrent", self.many),
                *((f"paced {p.label}", p) for p in self.paced), ("growth", self.growth)]


async def create_traders(client: httpx.AsyncClient, admin_key: str, count: int,
                         first: int = 0) -> list[str]:
    """Trader accounts with plenty of cash and raised limits, through the admin API; named
    ``bench-NNN`` from number ``first`` on."""
    admin = {"Authorization": f"Bearer {admin_key}"}
    gate = asyncio.Semaphore(8)

    async def one(i: int) -> str:
        async with gate:
            r = await client.post("/v1/admin/accounts", headers=admin, json={
                "name": f"bench-{first + i:03d}", "role": "trader", "cash": TRADER_CASH})
            if r.status_code != 201:
                raise RuntimeError(f"creating a trader failed: {r.status_code} {r.text}")
            body = r.json()
            r = await client.patch(f"/v1/admin/accounts/{body['account']['id']}",
                                   headers=admin, json=RAISED_LIMITS)
            if r.status_code != 200:
                raise RuntimeError(f"raising a trader's limits failed: {r.status_code} {r.text}")
            return str(body["api_key"])

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def send_orders(client: httpx.AsyncClient, key: str, count: int,
                      result: PhaseResult) -> None:
    """One trader sending ``count`` orders one after the other."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    clock = time.perf_counter
    for _ in range(count):
        t0 = clock()
        try:
            r = await client.post("/v1/orders", content=ORDER_BODY, headers=headers)
        except httpx.HTTPError as exc:
            result.note(f"{type(exc).__name__}: {exc}")
            continue
        elapsed = (clock() - t0) * 1000
        if r.status_code == 201:
            result.latencies_ms.append(elapsed)
        else:
            result.note(f"HTTP {r.status_code}: {r.text[:300]}")


async def send_paced(client: httpx.AsyncClient, key: str, first_due: float, interval: float,
                     end: float, result: PacedResult) -> None:
    """One trader sending an order every ``interval`` seconds from ``first_due`` until ``end``.

    One order in flight at a time, as a trading client waiting for its acknowledgement. The
    latency of an order is its own round trip plus the time the trader's previous order kept it
    from going out at its intended time (the service's backlog, which coordinated omission would
    hide). A late send for which the trader was free (this client's timer granularity, about a
    millisecond with uvloop, or its busy event loop) is not the service's doing: it is only
    reported, as send lag.
    """
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    clock = time.perf_counter
    due = first_due
    free_at = 0.0  # when the trader's previous order was answered
    while due < end:
        wait = due - clock()
        if wait > 0:  # uvloop's timers have millisecond resolution: early or late by up to ~1 ms
            await asyncio.sleep(wait)
        sent = clock()
        backlog = max(0.0, free_at - due)
        result.lags_ms.append((sent - due) * 1000)
        if backlog:
            result.held += 1
        try:
            r = await client.post("/v1/orders", content=ORDER_BODY, headers=headers)
        except httpx.HTTPError as exc:
            result.note(f"{type(exc).__name__}: {exc}")
            r = None
        free_at = clock()
        result.last_done = max(result.last_done, free_at)
        if r is not None:
            if r.status_code == 201:
                result.latencies_ms.append((free_at - sent + backlog) * 1000)
            else:
                result.note(f"HTTP {r.status_code}: {r.text[:300]}")
        due += interval


def plan_paced(opts: argparse.Namespace) -> list[PacedResult]:
    """For each rate: the baseline at the same pace, one order at a time, for half the time
    (if asked for), then the concurrent traders."""
    runs = []
    for rate in opts.paced_rates:
        interval = opts.paced_traders / rate
        if opts.paced_baseline:
            k = max(1, round(interval / SOLO_SPACING_S))
            runs.append(PacedResult(1, rate=k / interval, seconds=opts.paced_seconds / 2,
                                    interval_s=interval, accounts=k, solo=True))
        runs.append(PacedResult(opts.paced_traders, rate=rate, seconds=opts.paced_seconds,
                                interval_s=interval, accounts=opts.paced_traders))
    return runs


async def paced(client: httpx.AsyncClient, keys: list[str], rng: random.Random,
                result: PacedResult) -> None:
    """Every trader at a steady pace: from a random phase within one interval, or (``solo``)
    evenly staggered."""
    result.started = time.perf_counter() + 0.05
    end = result.started + result.seconds
    step = result.interval_s / len(keys)
    phases = [i * step if result.solo else rng.uniform(0, result.interval_s)
              for i in range(len(keys))]
    await asyncio.gather(*(send_paced(client, key, result.started + phase, result.interval_s,
                                      end, result)
                           for key, phase in zip(keys, phases, strict=True)))


async def timed(result: PhaseResult, server: ServiceProcess,
                work: Coroutine[Any, Any, Any]) -> PhaseResult:
    """Run ``work`` and record wall time, this process's CPU and the service's CPU."""
    gc.collect()
    cpu0, server0 = time.process_time(), server.cpu_seconds()
    t0 = time.perf_counter()
    await work
    result.wall_s = time.perf_counter() - t0
    result.client_cpu_s = time.process_time() - cpu0
    server1 = server.cpu_seconds()
    if server0 is not None and server1 is not None:
        result.server_cpu_s = server1 - server0
    return result


async def in_turn(client: httpx.AsyncClient, keys: list[str], per_trader: int,
                  result: PhaseResult) -> None:
    for key in keys:
        await send_orders(client, key, per_trader, result)


async def all_at_once(client: httpx.AsyncClient, keys: list[str], per_trader: int,
                      result: PhaseResult) -> None:
    await asyncio.gather(*(send_orders(client, key, per_trader, result) for key in keys))


async def http_floor(client: httpx.AsyncClient, count: int) -> Summary:
    """GET /healthz: the HTTP stack and this client, without the store."""
    samples = []
    for i in range(count + 10):
        t0 = time.perf_counter()
        r = await client.get("/healthz")
        elapsed = (time.perf_counter() - t0) * 1000
        r.raise_for_status()
        if i >= 10:
            samples.append(elapsed)
    return Summary.of(samples)


async def measure(base_url: str, admin_key: str, opts: argparse.Namespace,
                  server: ServiceProcess, backend: str, setup_started: float) -> BackendResult:
    connections = max(opts.traders, opts.paced_traders) + 20
    # Idle connections expire on the client before uvicorn's 5 s keep-alive timeout closes them,
    # so that a request is never sent on a connection the server is closing.
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections,
                          keepalive_expiry=2.0)
    single_accounts = -(-opts.single_orders // opts.orders_per_trader)
    async with httpx.AsyncClient(base_url=base_url, trust_env=False, limits=limits,
                                 timeout=httpx.Timeout(120.0)) as client:
        # Every paced run gets fresh accounts, so that their open orders stay few (as many as
        # each trader sends in the run) and do not pile up from one rate to the next.
        runs = plan_paced(opts)
        paced_keys = sum(run.accounts for run in runs)
        keys = await create_traders(client, admin_key,
                                    2 + single_accounts + opts.traders + paced_keys)
        warm, grower = keys[0], keys[1]
        singles = keys[2:2 + single_accounts]
        crowd = keys[2 + single_accounts:2 + single_accounts + opts.traders]
        pacers = keys[2 + single_accounts + opts.traders:]
        setup_s = time.perf_counter() - setup_started
        floor = await http_floor(client, opts.floor)
        # Warm-up on an account of its own: code paths, statement caches, pool connections.
        scratch = PhaseResult(1)
        await send_orders(client, warm, opts.warmup, scratch)
        await asyncio.gather(*(send_orders(client, warm, 1, scratch)
                               for _ in range(min(opts.traders, 40))))
        if scratch.errors:
            raise RuntimeError(f"warm-up orders failed: {scratch.first_error}")
        single = PhaseResult(1)
        await timed(single, server, in_turn(client, singles, opts.orders_per_trader, single))
        rng = random.Random(opts.seed)
        for run in runs:
            group, pacers = pacers[:run.accounts], pacers[run.accounts:]
            await asyncio.sleep(0.5)  # let the previous run's connections and writes settle
            await timed(run, server, paced(client, group, rng, run))
        many = PhaseResult(len(crowd))
        await timed(many, server, all_at_once(client, crowd, opts.orders_per_trader, many))
        growth = PhaseResult(1)
        if opts.growth_orders:
            await timed(growth, server, send_orders(client, grower, opts.growth_orders, growth))
    return BackendResult(backend, setup_s, floor, single, many, growth, single_accounts, runs)


def bench_backend(backend: str, opts: argparse.Namespace) -> BackendResult:
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        base_url, admin_key, server = start_service(backend, stack)
        try:
            result = run_async(measure(base_url, admin_key, opts, server, backend, started))
        except Exception:
            print(f"--- {backend} service log (tail) ---\n{server.log_tail()}", file=sys.stderr)
            raise
        if any(phase.errors for _, phase in result.phases()):
            result.server_log_tail = server.log_tail(10)
    return result


# --------------------------------------------------------------------------------------------
# report


def report_in_process(opts: argparse.Namespace) -> None:
    print("1. In-process validate() + check_risk()  (OrderService._submit_in's checks, no I/O)")
    print(f"   {'case':<40} {'n':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    cases = [(f"{opts.open_orders} open orders, 4 positions", opts.open_orders),
             ("199 open orders (max_open_orders is 200)", 199)]
    first: Summary | None = None
    for label, count in cases:
        s = bench_in_process(opts.iterations, count)
        first = first or s
        print(f"   {label:<40} {s.n:>7} {fmt(s.p50):>8} {fmt(s.p95):>8} {fmt(s.p99):>8} "
              f"{fmt(s.max):>8}")
    assert first is not None
    spec = "met" if first.p99 < SPEC_TARGET_MS else "MISSED"
    aim = "met" if first.p99 < AIM_P99_MS else "MISSED"
    print(f"   spec target < {SPEC_TARGET_MS:g} ms: {spec}; aim p99 < {AIM_P99_MS} ms: {aim} "
          f"(p99 {fmt(first.p99)} ms)")
    print()


def _cpu(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def report_http(results: list[BackendResult], opts: argparse.Namespace) -> None:
    print("2. HTTP POST /v1/orders -> response  (httpx.AsyncClient in this process, one "
          "`ordex serve` process, 127.0.0.1)")
    print(f"   {'backend':<9} {'traders':>7} {'orders':>6} {'errors':>6} {'p50 ms':>8} "
          f"{'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'orders/s':>8} {'srv CPU':>8} "
          f"{'cli CPU':>8}")
    for res in results:
        for phase in (res.single, res.many, *res.paced):
            s = Summary.of(phase.latencies_ms)
            label = phase.label if isinstance(phase, PacedResult) else phase.traders
            print(f"   {res.backend:<9} {label:>7} {s.n:>6} {phase.errors:>6} "
                  f"{fmt(s.p50):>8} {fmt(s.p95):>8} {fmt(s.p99):>8} {fmt(s.max):>8} "
                  f"{phase.throughput:>8.1f} {_cpu(phase.per_order(phase.server_cpu_s)):>8} "
                  f"{_cpu(phase.per_order(phase.client_cpu_s)):>8}")
    print(f"   traders 1 = one trader at a time: {results[0].single_accounts if results else 0} "
          f"accounts in turn, {opts.orders_per_trader} orders each, so that every account holds "
          f"the same 0-{opts.orders_per_trader - 1} open orders as in the concurrent run.")
    if opts.paced_rates:
        n = opts.paced_traders
        if len(opts.paced_rates) == 1:
            rate = opts.paced_rates[0]
            what, pace = f"{n}@{rate:g}", f"{rate:g} orders/s in all: each one order every " \
                f"{n / rate:.2f} s"
        else:
            what, pace = f"{n}@R", f"R orders/s in all: each one order every {n}/R s"
        print(f"   {what} = paced, open loop: {n} traders (fresh accounts), {pace}, from a random "
              f"phase (seed {opts.seed}), for {opts.paced_seconds:g} s; latency counts from the "
              "intended send time; orders/s is the achieved rate.")
        if opts.paced_baseline:
            print(f"   1@r = one trader at a time at the same pace as the {what} row below it: "
                  "fresh accounts, each one order per the same interval, staggered about "
                  f"{SOLO_SPACING_S * 1000:g} ms apart, for {opts.paced_seconds / 2:g} s "
                  "(idle gaps and authentication-cache expiries as in the paced run, no "
                  "concurrency).")
    print("   srv CPU / cli CPU = CPU ms per accepted order of the service process (all threads) "
          "/ of this client process.")
    print()
    for res in results:
        one = Summary.of(res.single.latencies_ms)
        lots = Summary.of(res.many.latencies_ms)
        print(f"   {res.backend}: p95({res.many.traders})/p95(1) = {lots.p95 / one.p95:.1f}x; "
              f"GET /healthz (no store) p50 {fmt(res.floor.p50)} ms, p95 {fmt(res.floor.p95)} ms;"
              f" setup {res.setup_s:.1f} s")
    for res in results:
        report_paced(res)
    for res in results:
        report_growth(res)
    for res in results:
        for name, phase in res.phases():
            if phase.errors:
                print(f"   ! {res.backend} {name}: {phase.errors} failed orders; first: "
                      f"{phase.first_error}")
        if res.server_log_tail:
            print("   service log tail:\n" + res.server_log_tail)


def _ratio(run: Summary, base: Summary) -> str:
    ratio = run.p95 / base.p95
    return f"{ratio:.2f}x ({'within' if ratio <= NFR003_MAX_RATIO else 'over'} NFR-003's " \
        f"{NFR003_MAX_RATIO:.2f}x)"


def report_paced(res: BackendResult) -> None:
    one = Summary.of(res.single.latencies_ms)
    solo: PacedResult | None = None
    for run in res.paced:
        if run.solo:
            solo = run
            continue
        s = Summary.of(run.latencies_ms)
        line = f"   {res.backend}: p95({run.label})/p95(1) = {_ratio(s, one)}"
        if solo is not None and solo.interval_s == run.interval_s:
            line += f"; /p95({solo.label}) = {_ratio(s, Summary.of(solo.latencies_ms))}"
        print(line)
        lags = Summary.of(run.lags_ms)
        print(f"      achieved {run.throughput:.1f} of {run.rate:g} orders/s; send lag (not "
              f"counted) p95 {fmt(lags.p95)} ms, max {fmt(lags.max)} ms; {run.held} sends held "
              "by the trader's unanswered order (counted)")


def report_growth(res: BackendResult) -> None:
    lat = res.growth.latencies_ms
    if len(lat) < 20 or res.growth.errors:
        return
    step = 100 if len(lat) >= 300 else max(10, len(lat) // 5)
    buckets = [(i, Summary.of(lat[i:i + step]).p50) for i in range(0, len(lat) - step + 1, step)]
    shown = ", ".join(f"{i}-{i + step - 1}: {fmt(p50)}" for i, p50 in buckets)
    slope = (buckets[-1][1] - buckets[0][1]) / (buckets[-1][0] - buckets[0][0]) * 100 \
        if len(buckets) > 1 else float("nan")
    print(f"   {res.backend}, one trader, {len(lat)} orders in a row - p50 ms by open orders "
          f"held: {shown}  (+{slope:.1f} ms per 100 open orders)")


# --------------------------------------------------------------------------------------------
# main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.bench_submit", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a short smoke run (small counts)")
    p.add_argument("--iterations", type=int,
                   help="in-process iterations per case (default 50000; quick 5000)")
    p.add_argument("--open-orders", type=int, default=20,
                   help="open orders in the main in-process case (default 20)")
    p.add_argument("--traders", type=int, default=100,
                   help="concurrent traders in the HTTP run (default 100)")
    p.add_argument("--orders-per-trader", type=int,
                   help="orders each trader sends, in both HTTP runs (default 30; quick 5)")
    p.add_argument("--single-orders", type=int,
                   help="orders in the one-trader-at-a-time run (default 300; quick 50)")
    p.add_argument("--growth-orders", type=int,
                   help="orders one trader sends in a row to show the cost of open orders "
                   "(default 500; quick 100; 0 to skip)")
    p.add_argument("--warmup", type=int, help="warm-up orders per service (default 50; quick 10)")
    p.add_argument("--floor", type=int,
                   help="GET /healthz requests for the HTTP floor (default 200; quick 50)")
    p.add_argument("--paced-rate", type=float, default=40.0,
                   help="aggregate orders/s of the paced open-loop run (default 40; 0 skips it)")
    p.add_argument("--paced-sweep", nargs="?", const="20,40,80", metavar="RATES",
                   help="run the paced mode at each of these comma-separated aggregate rates "
                   "instead of --paced-rate alone (default 20,40,80)")
    p.add_argument("--paced-seconds", type=float,
                   help="duration of each paced run in seconds (default 20; quick 5)")
    p.add_argument("--paced-traders", type=int,
                   help="traders in the paced run (default: --traders)")
    p.add_argument("--paced-baseline", action="store_true",
                   help="before each paced run, one trader at a time at the same pace (for half "
                   "of --paced-seconds), to compare with as well")
    p.add_argument("--seed", type=int, default=1,
                   help="seed of the paced traders' random phases (default 1)")
    p.add_argument("--backends", default="sqlite,postgres",
                   help="comma-separated: sqlite, postgres (default both)")
    p.add_argument("--skip-in-process", action="store_true")
    p.add_argument("--skip-http", action="store_true")
    opts = p.parse_args(argv)
    defaults = {"iterations": (50_000, 5_000), "orders_per_trader": (30, 5),
                "single_orders": (300, 50), "growth_orders": (500, 100), "warmup": (50, 10),
                "floor": (200, 50), "paced_seconds": (20.0, 5.0)}
    for name, (full, quick) in defaults.items():
        if getattr(opts, name) is None:
            setattr(opts, name, quick if opts.quick else full)
    opts.backends = [b.strip() for b in opts.backends.split(",") if b.strip()]
    unknown = set(opts.backends) - {"sqlite", "postgres"}
    if unknown:
        p.error(f"unknown backend(s): {', '.join(sorted(unknown))}")
    if opts.paced_traders is None:
        opts.paced_traders = opts.traders
    if opts.paced_sweep is not None:
        try:
            opts.paced_rates = [float(r) for r in opts.paced_sweep.split(",") if r.strip()]
        except ValueError:
            p.error(f"--paced-sweep takes comma-separated numbers, not {opts.paced_sweep!r}")
        if not opts.paced_rates or not all(0 < r < math.inf for r in opts.paced_rates):
            p.error("--paced-sweep rates must be numbers above zero")
    elif not 0 <= opts.paced_rate < math.inf:
        p.error("--paced-rate must be a number, zero or more")
    else:
        opts.paced_rates = [opts.paced_rate] if opts.paced_rate else []
    if not 0 < opts.paced_seconds < math.inf:
        p.error("--paced-seconds must be above zero")
    for name in ("iterations", "traders", "single_orders", "orders_per_trader", "floor",
                 "paced_traders"):
        if getattr(opts, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("open_orders", "warmup", "growth_orders"):
        if getattr(opts, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be zero or more")
    return opts


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the clean-ups


def begin(title: str, quick: bool) -> float:
    """Common start of a benchmark run: clean-up on SIGTERM, and a header line."""
    os.chdir(ROOT)
    signal.signal(signal.SIGTERM, _terminate)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"ordex {title} benchmark ({'quick' if quick else 'full'} run): Python "
          f"{platform.python_version()}, {os.cpu_count()} CPUs, load average {load}, client "
          f"loop {LOOP}")
    return time.perf_counter()


def finish(started: float) -> None:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\ntotal {time.perf_counter() - started:.1f} s; load average at the end {load}")


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    started = begin("submit", opts.quick)
    print()
    if not opts.skip_in_process:
        report_in_process(opts)
    if not opts.skip_http:
        results = [bench_backend(backend, opts) for backend in opts.backends]
        report_http(results, opts)
    finish(started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
