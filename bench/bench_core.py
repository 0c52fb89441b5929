"""The execution core's figures (issue 10's acceptance), each beside a minimal-FastAPI floor
measured in the same run.

Run from the project root (see bench/README.md)::

    .venv/bin/python -m bench.bench_core            # full run (about 11 minutes on 2 shared cores)
    .venv/bin/python -m bench.bench_core --quick    # smoke run (about 4 minutes on 2 shared cores)

1. server CPU per order end to end (submit -> filled -> streamed), embedded venue, SQLite and
   PostgreSQL, over a paced run (the first step of 3);
2. submit -> response p50 at one client, and its ratio to the floor's;
3. the highest paced open-loop rate with p99 submit -> filled under 50 ms (a step search);
4. SC-8: 100 traders at 100 orders/minute each, P95 at load / P95 at one trader;
5. in process, without HTTP: orders/s through validation, risk, the store, matching and fills,
   beside NautilusTrader's backtest engine on the same orders;
6. flat cost: CPU per order and submit p99 at 0 vs 2,000 open orders of the trader, and at 0 vs
   100,000 orders in the store (SQLite, without and with ANALYZE);
7. stream fan-out: 1, 100 and 1,000 subscribers on one trader's stream.

The floor is ``bench/floor_app.py``: FastAPI + uvicorn with ordex's uvicorn settings, validating
the same order body with the same pydantic model, as a process of its own on 127.0.0.1.
Everything binds to 127.0.0.1. Processes and temporary directories are removed on exit, also
after an error, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import core_runs as cr
from bench.bench_execution import Trader
from bench.bench_submit import begin, finish, fmt
from bench.core_inprocess import plan_orders, run_ordex
from bench.core_runs import CoreRun, FanOut, FanRun, Service
from bench.profile_summary import read, summary_lines
from bench.servers import ROOT, run_async, start_postgres
from bench.store_seed import analyze, prepare_store, seed_history

CPU_TARGET_MS = 2.0
P50_RATIO_TARGET = 3.0
RATE_TARGETS = {"sqlite": 400.0, "postgres": 300.0}
P99_LIMIT_MS = 50.0
SC8_TARGET = 1.05
INPROC_TARGET = 2500.0
FLAT_TOLERANCE = 0.15
FAN_FLOOR_FACTOR = 3.0
SC8_GAP_S = 0.1  # the one-trader baseline: between an order's fill and the next order
FLAT_GAP_S = 0.05
FAN_GAP_S = 0.05
ALL_SECTIONS = "1,2,3,4,5,6,7"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _ms(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else fmt(value)


def _us(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.0f}"


def _ratio(a: float | None, b: float | None) -> float:
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return float("nan")
    return a / b


class Report:
    """Details as they come; the figure lines again together at the end."""

    def __init__(self) -> None:
        self.figures: list[str] = []

    def detail(self, text: str = "") -> None:
        print(text, flush=True)

    def figure(self, text: str, target: str, ok: bool) -> None:
        line = f"{text} | target {target} | {verdict(ok)}"
        self.figures.append(line)
        print(line, flush=True)

    def summary(self) -> None:
        print("\nFigures (issue 10's acceptance; floor = the minimal FastAPI + uvicorn service, "
              "measured in this run):")
        for line in self.figures:
            print(line)


# --------------------------------------------------------------------------------------------
# the floor


@dataclass
class FloorFigures:
    one: CoreRun | None = None  # one client, one request at a time
    steps: list[CoreRun] = field(default_factory=list)
    best_rate: float | None = None
    sc8_ratio: float | None = None
    fan: FanRun | None = None

    @property
    def p50_ms(self) -> float | None:
        return None if self.one is None else self.one.p(self.one.response_ms(), 50)

    @property
    def cpu_ms(self) -> float | None:
        """CPU per request over the first paced step (the rate of figure 1)."""
        return self.steps[0].cpu_ms(net=True) if self.steps else None

    def fan_us(self) -> float | None:
        """Marginal CPU per WebSocket message delivered, in microseconds."""
        if self.fan is None or self.one is None:
            return None
        with_fan, alone = self.fan.per_order_ms(), self.one.cpu_ms(net=True)
        if with_fan is None or alone is None or not self.fan.events_per_order:
            return None
        return (with_fan - alone) / (self.fan.subscribers * self.fan.events_per_order) * 1000


def step_ok(run: CoreRun, limit_ms: float) -> tuple[bool, str]:
    done = run.done_ms()
    if run.overloaded:
        return False, f"overloaded: an order unfinished after the guard's wait, stopped after " \
                      f"{run.stopped_after_s:.1f} s"
    if run.errors or run.incomplete:
        return False, f"{len(run.errors)} errors, {run.incomplete} unfinished"
    if run.offered and run.sent < 0.95 * run.offered:
        return False, f"this client sent {run.sent} of {run.offered} planned orders"
    p99 = run.p(done, 99)
    if not p99 < limit_ms:
        return False, f"p99 {fmt(p99)} ms"
    return True, "ok"


def step_line(name: str, run: CoreRun, verdict_text: str) -> str:
    done = run.done_ms()
    what = "submit->filled" if run.fills_expected else "submit->response"
    lags = run.p(run.lags_ms, 99) if run.lags_ms else float("nan")
    return (f"   {name} {run.rate:g}/s: {run.sent} sent, {run.completed} done, "
            f"{len(run.errors)} errors; {what} p50/p99 {_ms(run.p(done, 50))}/"
            f"{_ms(run.p(done, 99))} ms; achieved {run.achieved_rate():.1f}/s; CPU/order "
            f"{_ms(run.cpu_ms(net=True))} ms net, {_ms(run.cpu_ms(net=False))} gross, client "
            f"{_ms(run.client_cpu_s / run.sent * 1000 if run.sent else None)}; client send lag "
            f"p99 {_ms(lags)} ms; {verdict_text}")


async def step_search(http: cr.BenchClient, service: Service, traders: list[Trader],
                      opts: argparse.Namespace, seconds: float, report: Report, *,
                      fills: bool, profile: str | None = None) -> list[CoreRun]:
    """Paced open-loop runs at each rate in turn, stopping after the first that fails."""
    runs: list[CoreRun] = []
    rng = random.Random(opts.seed)
    for i, rate in enumerate(opts.rates):
        await cr.settle(service.procs)
        run = CoreRun(f"{len(traders)}@{rate:g}", len(traders), rate=rate, fills_expected=fills)
        await cr.run_measured(
            run, service.procs,
            functools.partial(cr.paced, http, traders, rate, seconds, rng, run,
                              opts.overload_seconds),
            profile if i == 0 else None, f"{service.name}-{rate:g}")
        runs.append(run)
        ok, why = step_ok(run, P99_LIMIT_MS)
        run.passed = ok
        report.detail(step_line(service.name, run, why))
        if not ok:
            break
    return runs


def best_rate(runs: list[CoreRun]) -> float | None:
    best = None
    for run in runs:
        if run.passed:
            best = run.rate
    return best


async def measure_floor(floor: Service, opts: argparse.Namespace,
                        report: Report) -> FloorFigures:
    out = FloorFigures()
    report.detail("Floor: the minimal FastAPI service (bench/floor_app.py)")
    async with cr.http_client(floor.base_url, opts.sc8_traders + 40) as http:
        warm = Trader(0, "floor", "warm")
        for _ in range(opts.warmup):
            track, body = warm.new_order()
            await warm.submit(http, track, body)
        if "2" in opts.sections or "1" in opts.sections or "7" in opts.sections:
            one = CoreRun("1", 1, fills_expected=False)
            solo = Trader(1, "floor", "solo")
            await cr.run_measured(one, floor.procs, functools.partial(
                cr.one_by_one, http, solo, opts.single_orders, opts.single_gap_ms / 1000, one))
            out.one = one
            report.detail(f"   one client: {one.sent} requests, p50/p99 submit->response "
                          f"{_ms(one.p(one.response_ms(), 50))}/"
                          f"{_ms(one.p(one.response_ms(), 99))} ms, CPU/request "
                          f"{_ms(one.cpu_ms(net=True))} ms net")
        crowd = [Trader(i, "floor", "crowd") for i in range(opts.step_traders)]
        if "1" in opts.sections or "3" in opts.sections or "6" in opts.sections:
            out.steps = await step_search(http, floor, crowd, opts, opts.floor_seconds, report,
                                          fills=False)
            out.best_rate = best_rate(out.steps)
        if "4" in opts.sections:
            out.sc8_ratio = await floor_sc8(http, floor, opts, report)
        if "7" in opts.sections and opts.subscribers:
            size = max(opts.subscribers)
            fan = FanOut(size, fills=False)
            await fan.connect(floor.ws_url, "floor")
            try:
                sender = Trader(2, "floor", "fan")
                out.fan = await cr.fan_run(http, floor, sender, fan, opts.fanout_orders,
                                           FAN_GAP_S, opts.fanout_max_seconds)
            finally:
                await fan.close()
            report.detail(f"   {size} WebSockets: {out.fan.delivered} messages delivered, "
                          f"marginal CPU {_us(out.fan_us())} us per message")
    report.detail()
    return out


async def floor_sc8(http: cr.BenchClient, floor: Service, opts: argparse.Namespace,
                    report: Report) -> float:
    base = CoreRun("1", 1, fills_expected=False)
    await cr.run_measured(base, floor.procs, functools.partial(
        cr.one_by_one, http, Trader(3, "floor", "sc8-solo"), opts.sc8_baseline_orders,
        SC8_GAP_S, base))
    traders = [Trader(i, "floor", "sc8") for i in range(opts.sc8_traders)]
    rate = opts.sc8_traders * opts.sc8_per_minute / 60
    load = CoreRun(f"{opts.sc8_traders}@{rate:g}", opts.sc8_traders, rate=rate,
                   fills_expected=False)
    await cr.run_measured(load, floor.procs, functools.partial(
        cr.paced, http, traders, rate, opts.floor_seconds, random.Random(opts.seed), load,
        opts.overload_seconds))
    ratio = _ratio(load.p(load.response_ms(), 95), base.p(base.response_ms(), 95))
    report.detail(f"   SC-8 shape, {opts.floor_seconds:g} s: P95 submit->response "
                  f"{_ms(load.p(load.response_ms(), 95))} ms at load, "
                  f"{_ms(base.p(base.response_ms(), 95))} ms one client; ratio {ratio:.2f}")
    return ratio


# --------------------------------------------------------------------------------------------
# ordex over HTTP (figures 1-4 and 6a)


@dataclass
class Sc8Round:
    """One round's figures, taken when it ended (an overloaded round's late events may still
    arrive afterwards)."""

    base: CoreRun
    load: CoreRun
    filled_ratio: float = float("nan")
    response_ratio: float = float("nan")
    errors: int = 0

    def __post_init__(self) -> None:
        self.filled_ratio = self._ratio(CoreRun.filled_ms)
        self.response_ratio = self._ratio(CoreRun.response_ms)
        self.errors = sum(len(r.errors) + r.incomplete + len(r.stream_errors)
                          for r in (self.base, self.load))

    def _ratio(self, pick: Callable[[CoreRun], list[float]]) -> float:
        return _ratio(self.load.p(pick(self.load), 95), self.base.p(pick(self.base), 95))

    def ratio(self, filled: bool = True) -> float:
        return self.filled_ratio if filled else self.response_ratio


@dataclass
class FlatRun:
    label: str
    run: CoreRun

    @property
    def cpu(self) -> float | None:
        """Gross: a cost the store's size adds to the idle service (polling) counts too."""
        return self.run.cpu_ms(net=False)

    @property
    def p99(self) -> float:
        return self.run.p(self.run.response_ms(), 99)


@dataclass
class BackendFigures:
    backend: str
    one: CoreRun | None = None
    steps: list[CoreRun] = field(default_factory=list)
    sc8: list[Sc8Round] = field(default_factory=list)
    open_flat: list[FlatRun] = field(default_factory=list)
    profile: Path | None = None


async def flat_run(http: cr.BenchClient, service: Service, trader: Trader, label: str,
                   opts: argparse.Namespace, report: Report) -> FlatRun:
    await cr.settle(service.procs)
    run = CoreRun(label, 1)
    await cr.run_measured(run, service.procs, functools.partial(
        cr.one_by_one, http, trader, opts.flat_orders, FLAT_GAP_S, run, opts.flat_max_seconds))
    flat = FlatRun(label, run)
    report.detail(f"   {service.name} {label}: {run.sent} orders one at a time, CPU/order "
                  f"{_ms(flat.cpu)} ms gross ({_ms(run.cpu_ms(net=True))} net of idle "
                  f"{_ms(run.idle_cpu * 100 if run.idle_cpu is not None else None)}% of a "
                  "core), submit->response"
                  f" p50/p99 {_ms(run.p(run.response_ms(), 50))}/{_ms(flat.p99)} ms, "
                  f"{len(run.errors)} errors, {run.incomplete} unfinished")
    return flat


async def measure_ordex(service: Service, backend: str, opts: argparse.Namespace,
                        report: Report) -> BackendFigures:
    out = BackendFigures(backend)
    report.detail(f"ordex serve, {backend}, embedded venue")
    connections = max(opts.step_traders, opts.sc8_traders) + 40
    async with cr.http_client(service.base_url, connections) as http:
        keys = await service.new_keys(http, 2 + opts.step_traders)
        warm, solo = Trader(0, keys[0], "warm"), Trader(1, keys[1], "solo")
        crowd = [Trader(i, k, "crowd") for i, k in enumerate(keys[2:])]
        opened: list[Trader] = [warm, solo]
        try:
            await cr.connect_all([warm, solo], service.ws_url)
            scratch = CoreRun("warm-up", 1)
            await cr.one_by_one(http, warm, opts.warmup, 0.01, scratch)
            if not any(t.final == "filled" for t in scratch.tracks):
                raise RuntimeError(f"no warm-up order filled: {scratch.errors[:1]}")
            if "1" in opts.sections or "2" in opts.sections:
                one = CoreRun("1", 1)
                await cr.run_measured(one, service.procs, functools.partial(
                    cr.one_by_one, http, solo, opts.single_orders, opts.single_gap_ms / 1000,
                    one))
                out.one = one
                report.detail(
                    f"   one client: {one.sent} orders, each after the previous one's fill + "
                    f"{opts.single_gap_ms:g} ms; p50/p99 submit->response "
                    f"{_ms(one.p(one.response_ms(), 50))}/{_ms(one.p(one.response_ms(), 99))}"
                    f" ms, submit->filled {_ms(one.p(one.filled_ms(), 50))}/"
                    f"{_ms(one.p(one.filled_ms(), 99))} ms; CPU/order {_ms(one.cpu_ms(net=True))}"
                    f" ms net, {_ms(one.cpu_ms(net=False))} gross; {len(one.errors)} errors")
            if "1" in opts.sections or "3" in opts.sections:
                await cr.connect_all(crowd, service.ws_url)
                opened += crowd
                out.steps = await step_search(http, service, crowd, opts, opts.step_seconds,
                                              report, fills=True, profile=opts.py_spy)
                await cr.close_all(crowd)
                if opts.py_spy:
                    out.profile = Path(opts.py_spy) / f"{service.name}-{opts.rates[0]:g}-server.txt"
            if "4" in opts.sections and backend in opts.sc8_backends:
                out.sc8 = await sc8(http, service, opts, report, opened)
            if "6" in opts.sections and backend == "sqlite" and opts.open_orders:
                f0, f1 = (Trader(i, k, f"flat{i}") for i, k in
                          enumerate(await service.new_keys(http, 2)))
                await cr.connect_all([f0, f1], service.ws_url)
                opened += [f0, f1]
                out.open_flat.append(await flat_run(http, service, f0, "0 open orders", opts,
                                                    report))
                t0 = time.perf_counter()
                errors = await cr.rest_orders(http, f1, opts.open_orders)
                first = f"; first: {errors[0]}" if errors else ""
                report.detail(f"   {opts.open_orders} resting limit orders placed in "
                              f"{time.perf_counter() - t0:.1f} s ({len(errors)} errors{first})")
                out.open_flat.append(await flat_run(
                    http, service, f1, f"{opts.open_orders} open orders", opts, report))
        finally:
            await cr.close_all(opened, http, warm)
    report.detail()
    return out


async def sc8(http: cr.BenchClient, service: Service, opts: argparse.Namespace,
              report: Report, opened: list[Trader]) -> list[Sc8Round]:
    keys = await service.new_keys(http, 1 + opts.sc8_traders)
    solo = Trader(0, keys[0], "sc8-solo")
    traders = [Trader(i, k, "sc8") for i, k in enumerate(keys[1:])]
    await cr.connect_all([solo, *traders], service.ws_url)
    opened += [solo, *traders]
    rate = opts.sc8_traders * opts.sc8_per_minute / 60
    rounds: list[Sc8Round] = []
    for n in range(opts.sc8_runs):
        await cr.settle(service.procs)
        base = CoreRun("1", 1)
        await cr.run_measured(base, service.procs, functools.partial(
            cr.one_by_one, http, solo, opts.sc8_baseline_orders, SC8_GAP_S, base))
        await cr.settle(service.procs)
        load = CoreRun(f"{opts.sc8_traders}@{rate:g}", opts.sc8_traders, rate=rate)
        await cr.run_measured(load, service.procs, functools.partial(
            cr.paced, http, traders, rate, opts.sc8_seconds, random.Random(opts.seed + n), load,
            opts.overload_seconds))
        for t in (solo, *traders):
            if t.stream_error:
                load.stream_errors.append(t.stream_error)
        r = Sc8Round(base, load)
        rounds.append(r)
        note = f"; OVERLOADED, stopped after {load.stopped_after_s:.1f} s" if load.overloaded \
            else ""
        one_p95, load_p95 = base.p(base.filled_ms(), 95), load.p(load.filled_ms(), 95)
        report.detail(
            f"   SC-8 run {n + 1}: one trader P95 submit->filled {_ms(one_p95)} ms; "
            f"{opts.sc8_traders} traders at {opts.sc8_per_minute}/min ({rate:.1f}/s): "
            f"{load.sent} sent, {load.completed} filled, P95 {_ms(load_p95)} ms; ratio "
            f"{r.ratio():.2f} (submit->response {r.ratio(False):.2f}); errors {r.errors}; "
            f"CPU/order {_ms(load.cpu_ms(net=True))} ms{note}")
        if load.overloaded:
            report.detail("   (not repeated: the service did not keep up with the load)")
            break
    return rounds


# --------------------------------------------------------------------------------------------
# 5. in process


@dataclass
class InProcFigures:
    rate: float
    filled: int
    orders: int
    cpu_ms: float
    errors: int
    nautilus: dict[str, object] | None
    nautilus_error: str | None = None
    tasks: int = 0

    @property
    def nautilus_rate(self) -> float | None:
        if not self.nautilus:
            return None
        return float(self.nautilus["filled"]) / float(self.nautilus["seconds"])  # type: ignore[arg-type]


def measure_inprocess(opts: argparse.Namespace, report: Report) -> InProcFigures:
    """ordex at each of ``--inproc-concurrency``'s task counts; the figure is the highest
    rate of a run in which every order filled without an error."""
    plan = plan_orders(opts.inproc_orders)
    runs = []
    for tasks in opts.inproc_concurrency:
        report.detail(f"In process, no HTTP: {opts.inproc_orders} orders from {tasks} tasks over "
                      f"{opts.inproc_traders} traders")
        res = run_async(run_ordex(plan, opts.inproc_traders, tasks, opts.inproc_warmup))
        first = f"; first: {res.first_error}" if res.first_error else ""
        report.detail(f"   ordex: {res.filled} of {res.orders} filled ({res.other_final} other "
                      f"final states, {res.errors} errors{first}) in {res.seconds:.2f} s = "
                      f"{res.rate:.0f} orders/s, "
                      f"{res.cpu_seconds / max(res.filled, 1) * 1000:.2f} ms CPU each")
        runs.append((tasks, res))
    whole = [run for run in runs if run[1].filled == run[1].orders and not run[1].errors]
    tasks, res = max(whole or runs, key=lambda run: run[1].rate)
    cpu = res.cpu_seconds / max(res.filled, 1) * 1000
    nautilus: dict[str, object] | None = None
    error = None
    if not opts.skip_nautilus:
        done = subprocess.run(
            [sys.executable, "-m", "bench.core_nautilus", "--orders", str(opts.inproc_orders)],
            cwd=ROOT, env={**os.environ, **cr.child_env()}, capture_output=True, text=True,
            timeout=900, check=False)
        lines = [x for x in done.stdout.splitlines() if x.startswith("{")]
        if done.returncode == 0 and lines:
            nautilus = json.loads(lines[-1])
            report.detail(f"   NautilusTrader {nautilus['version']}: {nautilus['filled']} of "
                          f"{nautilus['orders']} filled ({nautilus['denied']} denied) in "
                          f"{float(nautilus['seconds']):.2f} s")  # type: ignore[arg-type]
        else:
            error = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            error = f"exit {done.returncode}: {error[0][:200]}"
            report.detail(f"   NautilusTrader failed: {error}")
    report.detail()
    return InProcFigures(res.rate, res.filled, res.orders, cpu, res.errors, nautilus,
                         error if isinstance(error, str) else None, tasks)


# --------------------------------------------------------------------------------------------
# 6b. store size, 7. fan-out


def measure_store(stack: contextlib.ExitStack, opts: argparse.Namespace,
                  report: Report) -> list[FlatRun]:
    """One SQLite data dir, three starts of ``ordex serve``: empty, with the history seeded,
    and after ANALYZE."""
    report.detail(f"Store size: ordex serve on SQLite, empty, then with {opts.store_orders} "
                  "stored orders, then the same after ANALYZE")
    tmp = cr.new_tmp(stack, "store")
    data = tmp / "data"
    traders = run_async(prepare_store(data, opts.history_traders))
    flats: list[FlatRun] = []
    made = 0
    phases: list[tuple[str, Callable[[], object] | None]] = [
        ("0 stored orders", None),
        (f"{opts.store_orders} stored orders",
         lambda: seed_history(data / "ordex.db", traders, opts.store_orders, opts.seed)),
        (f"{opts.store_orders} stored orders, ANALYZE", lambda: analyze(data / "ordex.db"))]
    for n, (label, before) in enumerate(phases):
        if before is not None:
            t0 = time.perf_counter()
            written = before()
            report.detail(f"   {label}: prepared in {time.perf_counter() - t0:.1f} s"
                          + (f" ({written} rows)" if isinstance(written, int) else ""))
        with contextlib.ExitStack() as phase:
            service = cr.start_ordex(phase, tmp, "sqlite", data_dir=data, name=f"-store{n}")
            service.traders_made = made

            async def one(service: Service = service, label: str = label) -> FlatRun:
                async with cr.http_client(service.base_url, 20) as http:
                    warm, trader = (Trader(i, k, f"store{i}") for i, k in
                                    enumerate(await service.new_keys(http, 2)))
                    await cr.connect_all([warm, trader], service.ws_url)
                    try:
                        await cr.one_by_one(http, warm, opts.warmup, 0.01,
                                            CoreRun("warm-up", 1))
                        return await flat_run(http, service, trader, label, opts, report)
                    finally:
                        await cr.close_all([warm, trader], http, warm)

            flats.append(run_async(one()))
            made = service.traders_made
    report.detail()
    return flats


def measure_fanout(stack: contextlib.ExitStack, opts: argparse.Namespace,
                   report: Report) -> list[FanRun]:
    report.detail(f"Stream fan-out: ordex serve on SQLite, {'/'.join(map(str, opts.subscribers))}"
                  " subscribers on one trader's stream")
    tmp = cr.new_tmp(stack, "fanout")
    limit = str(max(opts.subscribers) + 10)
    service = cr.start_ordex(stack, tmp, "sqlite",
                             extra_env={"ORDEX_STREAM_CONNECTIONS_PER_TRADER": limit})

    async def run() -> list[FanRun]:
        out: list[FanRun] = []
        async with cr.http_client(service.base_url, 20) as http:
            for size in opts.subscribers:
                await cr.settle(service.procs)
                (key,) = await service.new_keys(http, 1)
                sender = Trader(size, key, f"fan{size}")
                fan = FanOut(size)
                t0 = time.perf_counter()
                await fan.connect(service.ws_url, key)
                connected = time.perf_counter() - t0
                try:
                    for _ in range(3):  # warm: the trader's first orders, not measured
                        track, body = sender.new_order()
                        await sender.submit(http, track, body)
                        await fan.wait(track.cid, cr.ORDER_TIMEOUT_S)
                    res = await cr.fan_run(http, service, sender, fan, opts.fanout_orders,
                                           FAN_GAP_S, opts.fanout_max_seconds)
                finally:
                    await fan.close()
                    with contextlib.suppress(Exception):  # wakes the closed streams' handlers
                        track, body = sender.new_order()
                        await sender.submit(http, track, body)
                        await asyncio.sleep(0.3)
                out.append(res)
                report.detail(
                    f"   {size} subscribers (connected in {connected:.1f} s): {res.run.sent} "
                    f"orders, {res.complete} seen to the end by all, {res.delivered} events "
                    f"delivered ({res.events_per_order:.1f} per order and subscriber), CPU "
                    f"{_ms(res.per_order_ms())} ms per order net, {_us(res.per_event_us())} us"
                    f" per delivered event; {res.stream_errors} streams failed")
        return out

    results = run_async(run())
    report.detail()
    return results


# --------------------------------------------------------------------------------------------
# figure lines


def figures_http(report: Report, res: BackendFigures, floor: FloorFigures,
                 opts: argparse.Namespace) -> None:
    b = res.backend
    if res.steps and "1" in opts.sections:
        first = res.steps[0]
        net, gross = first.cpu_ms(net=True), first.cpu_ms(net=False)
        report.figure(
            f"1. server CPU per order, submit -> filled -> streamed, embedded venue, {b}: "
            f"{_ms(net)} ms net of idle ({_ms(gross)} gross, {first.sent} orders at "
            f"{first.rate:g}/s); floor {_ms(floor.cpu_ms)} ms per request",
            f"<= {CPU_TARGET_MS:g} ms", net is not None and net <= CPU_TARGET_MS)
    if res.one is not None and "2" in opts.sections:
        p50 = res.one.p(res.one.response_ms(), 50)
        ratio = _ratio(p50, floor.p50_ms)
        report.figure(
            f"2. submit -> response p50, one client, {b}: {_ms(p50)} ms = {ratio:.1f}x the "
            f"floor's {_ms(floor.p50_ms)} ms",
            f"<= {P50_RATIO_TARGET:g}x", ratio <= P50_RATIO_TARGET)
    if res.steps and "3" in opts.sections:
        best = best_rate(res.steps)
        tried = "/".join(f"{r.rate:g}" for r in res.steps)
        shown = f"{best:g} orders/s" if best else f"below {res.steps[0].rate:g} orders/s"
        floor_best = f"{floor.best_rate:g}" if floor.best_rate else "-"
        target = RATE_TARGETS[b]
        report.figure(
            f"3. highest sustained rate with p99 submit -> filled < {P99_LIMIT_MS:g} ms, {b}: "
            f"{shown} (steps run: {tried}); floor {floor_best} orders/s (p99 submit -> response"
            f", steps up to {opts.rates[-1]:g})",
            f">= {target:g} orders/s", best is not None and best >= target)
    if res.sc8 and "4" in opts.sections:
        ratios = [r.ratio() for r in res.sc8]
        acks = [r.ratio(False) for r in res.sc8]
        errors = sum(r.errors for r in res.sc8)
        median = statistics.median(ratios)
        overloaded = any(r.load.overloaded for r in res.sc8)
        shown = ", ".join(f"{x:.2f}" for x in ratios)
        floor_ratio = f"{floor.sc8_ratio:.2f}" if floor.sc8_ratio is not None else "-"
        report.figure(
            f"4. SC-8, {opts.sc8_traders} traders x {opts.sc8_per_minute} orders/min for "
            f"{opts.sc8_seconds:g} s, {b}: P95 submit -> filled at load / one trader = "
            f"{median:.2f} (median of {len(ratios)}: {shown}"
            f"{'; OVERLOADED' if overloaded else ''}); submit -> response "
            f"{statistics.median(acks):.2f}; errors {errors}; floor {floor_ratio} "
            "(submit -> response)",
            f"<= {SC8_TARGET:g}, no errors",
            median <= SC8_TARGET and not errors and not overloaded)
    if len(res.open_flat) == 2 and "6" in opts.sections:
        flat_figure(report, "6a", f"0 -> {opts.open_orders} open orders for the trader, {b}",
                    res.open_flat[0], res.open_flat[1], floor)


def flat_figure(report: Report, tag: str, what: str, base: FlatRun, other: FlatRun,
                floor: FloorFigures) -> None:
    cpu = _ratio(other.cpu, base.cpu)
    p99 = _ratio(other.p99, base.p99)
    ok = all(abs(x - 1) <= FLAT_TOLERANCE for x in (cpu, p99))
    report.figure(
        f"{tag}. flat cost, {what}: CPU/order (gross) x{cpu:.2f} ({_ms(base.cpu)} -> "
        f"{_ms(other.cpu)} ms), submit p99 x{p99:.2f} ({_ms(base.p99)} -> {_ms(other.p99)} "
        f"ms); floor {_ms(floor.cpu_ms)} ms CPU per request",
        f"within {FLAT_TOLERANCE * 100:g}%", ok)


def figures_fan(report: Report, runs: list[FanRun], floor: FloorFigures) -> None:
    if not runs:
        return
    first = runs[0]
    marginal: list[float] = []
    for r in runs[1:]:
        a, b = r.per_order_ms(), first.per_order_ms()
        extra = (r.subscribers - first.subscribers) * r.events_per_order
        marginal.append((a - b) / extra * 1000 if a is not None and b is not None and extra
                        else float("nan"))
    floor_us = floor.fan_us()
    flat = len(marginal) < 2 or abs(_ratio(marginal[-1], marginal[-2]) - 1) <= FLAT_TOLERANCE
    cheap = bool(marginal) and floor_us is not None and \
        marginal[-1] <= FAN_FLOOR_FACTOR * max(floor_us, 1e-9)
    failed = sum(r.stream_errors for r in runs) + sum(r.run.sent - r.complete for r in runs)
    sizes = "/".join(str(r.subscribers) for r in runs)
    report.figure(
        f"7. stream fan-out, {sizes} subscribers on one trader's stream, sqlite: CPU per order "
        f"{'/'.join(_ms(r.per_order_ms()) for r in runs)} ms, per delivered event "
        f"{'/'.join(_us(r.per_event_us()) for r in runs)} us; marginal per extra delivered "
        f"event {'/'.join(_us(m) for m in marginal)} us; floor {_us(floor_us)} us per message"
        f"{f'; {failed} orders not seen by all' if failed else ''}",
        f"marginal cost flat (within {FLAT_TOLERANCE * 100:g}%) and <= {FAN_FLOOR_FACTOR:g}x "
        "the floor's", flat and cheap and not failed)


def figure_inproc(report: Report, res: InProcFigures) -> None:
    naut = res.nautilus_rate
    shown = f"NautilusTrader {res.nautilus['version']} backtest {naut:.0f} orders/s (no store)" \
        if res.nautilus and naut is not None else f"NautilusTrader not run ({res.nautilus_error})"
    report.figure(
        f"5. in process, no HTTP (validation, risk, durable SQLite store, matching, fills): "
        f"{res.rate:.0f} orders/s ({res.filled} of {res.orders} orders from {res.tasks} tasks, "
        f"{res.cpu_ms:.2f} ms CPU each); {shown}",
        f">= {INPROC_TARGET:g} orders/s",
        res.rate >= INPROC_TARGET and res.filled == res.orders and not res.errors)


def print_profile(report: Report, res: BackendFigures) -> None:
    if res.profile is None:
        return
    if not res.profile.exists():
        report.detail(f"   profile {res.profile}: not written")
        return
    report.detail(f"Profile of the service, {res.backend}, first step ({res.profile}):")
    for line in summary_lines(read(res.profile)):
        report.detail(line)


# --------------------------------------------------------------------------------------------
# main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.bench_core", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a short smoke run (about 4 minutes)")
    p.add_argument("--sections", default=ALL_SECTIONS,
                   help=f"comma-separated figures to measure (default {ALL_SECTIONS})")
    p.add_argument("--backends", default="sqlite,postgres",
                   help="stores for figures 1-3 (default sqlite,postgres)")
    p.add_argument("--rates", default="20,40,80,160,320,400,480",
                   help="orders/s of the step search, in order; the first is figure 1's rate "
                   "(default 20,40,80,160,320,400,480)")
    p.add_argument("--step-seconds", type=float, help="each step (default 8; quick 4)")
    p.add_argument("--step-traders", type=int, help="traders in the steps (default 50; quick 20)")
    p.add_argument("--floor-seconds", type=float,
                   help="each paced run of the floor (default 6; quick 2)")
    p.add_argument("--single-orders", type=int,
                   help="one-client orders, figure 2 (default 150; quick 40)")
    p.add_argument("--single-gap-ms", type=float, default=20.0,
                   help="one client: pause after each order's fill (default 20)")
    p.add_argument("--warmup", type=int, help="warm-up orders per service (default 30; quick 10)")
    p.add_argument("--sc8-traders", type=int, default=100)
    p.add_argument("--sc8-per-minute", type=int, default=100,
                   help="orders per minute of each SC-8 trader (default 100)")
    p.add_argument("--sc8-seconds", type=float, help="SC-8 load (default 60; quick 10)")
    p.add_argument("--sc8-runs", type=int, help="SC-8 rounds, the median is shown (default 3; "
                   "quick 1)")
    p.add_argument("--sc8-baseline-orders", type=int,
                   help="the one-trader baseline of each SC-8 round (default 100; quick 30)")
    p.add_argument("--sc8-backends", default="sqlite",
                   help="stores for SC-8 (default sqlite)")
    p.add_argument("--inproc-orders", type=int, help="figure 5 (default 3000; quick 500)")
    p.add_argument("--inproc-traders", type=int, default=10)
    p.add_argument("--inproc-concurrency", default="16,64",
                   help="tasks submitting at once in figure 5, one run for each; the figure is "
                   "the fastest (default 16,64)")
    p.add_argument("--inproc-warmup", type=int, default=50)
    p.add_argument("--skip-nautilus", action="store_true")
    p.add_argument("--open-orders", type=int,
                   help="resting orders of the trader, figure 6a (default 2000; quick 300)")
    p.add_argument("--store-orders", type=int,
                   help="stored orders, figure 6b (default 100000; quick 20000)")
    p.add_argument("--history-traders", type=int, default=50,
                   help="traders the stored orders belong to (default 50)")
    p.add_argument("--flat-orders", type=int,
                   help="orders of each flat-cost run (default 300; quick 30)")
    p.add_argument("--flat-max-seconds", type=float,
                   help="cap of each flat-cost run (default 25; quick 10)")
    p.add_argument("--subscribers", default="1,100,1000",
                   help="subscriber counts of figure 7 (default 1,100,1000)")
    p.add_argument("--fanout-orders", type=int,
                   help="orders per subscriber count (default 20; quick 6)")
    p.add_argument("--fanout-max-seconds", type=float,
                   help="cap per subscriber count (default 25; quick 8)")
    p.add_argument("--overload-seconds", type=float, default=5.0,
                   help="a paced run stops when an order is unfinished this long (default 5)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--py-spy", metavar="DIR",
                   help="sample the service with py-spy during figure 1's run, into DIR, and "
                   "print where its time goes (needs py-spy beside this Python)")
    opts = p.parse_args(argv)
    defaults = {"step_seconds": (8.0, 4.0), "step_traders": (50, 20), "floor_seconds": (6.0, 2.0),
                "single_orders": (150, 40), "warmup": (30, 10), "sc8_seconds": (60.0, 10.0),
                "sc8_runs": (3, 1), "sc8_baseline_orders": (100, 30),
                "inproc_orders": (3000, 500), "open_orders": (2000, 300),
                "store_orders": (100_000, 20_000), "flat_orders": (300, 30),
                "flat_max_seconds": (25.0, 10.0), "fanout_orders": (20, 6),
                "fanout_max_seconds": (25.0, 8.0)}
    for name, (full, quick) in defaults.items():
        if getattr(opts, name) is None:
            setattr(opts, name, quick if opts.quick else full)
    opts.sections = {s.strip() for s in opts.sections.split(",") if s.strip()}
    if opts.sections - set(ALL_SECTIONS.split(",")):
        p.error(f"--sections takes numbers from {ALL_SECTIONS}")
    opts.backends = [b.strip() for b in opts.backends.split(",") if b.strip()]
    opts.sc8_backends = [b.strip() for b in opts.sc8_backends.split(",") if b.strip()]
    if set(opts.backends + opts.sc8_backends) - set(RATE_TARGETS):
        p.error("--backends and --sc8-backends take sqlite and/or postgres")
    try:
        opts.rates = [float(r) for r in opts.rates.split(",") if r.strip()]
        opts.subscribers = [int(s) for s in opts.subscribers.split(",") if s.strip()]
        opts.inproc_concurrency = [int(t) for t in opts.inproc_concurrency.split(",")
                                   if t.strip()]
    except ValueError:
        p.error("--rates, --subscribers and --inproc-concurrency take comma-separated numbers")
    if not opts.inproc_concurrency or min(opts.inproc_concurrency) < 1:
        p.error("--inproc-concurrency must be numbers of at least 1")
    if not opts.rates or not all(0 < r < math.inf for r in opts.rates):
        p.error("--rates must be numbers above zero")
    if any(s < 1 for s in opts.subscribers):
        p.error("--subscribers must be at least 1")
    for name in ("step_traders", "single_orders", "warmup", "sc8_traders", "sc8_per_minute",
                 "sc8_runs", "sc8_baseline_orders", "inproc_orders", "inproc_traders",
                 "flat_orders", "fanout_orders", "history_traders"):
        if getattr(opts, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("step_seconds", "floor_seconds", "sc8_seconds", "flat_max_seconds",
                 "fanout_max_seconds", "overload_seconds"):
        if not 0 < getattr(opts, name) < math.inf:
            p.error(f"--{name.replace('_', '-')} must be above zero")
    if opts.open_orders < 0 or opts.store_orders < 0 or opts.inproc_warmup < 0:
        p.error("--open-orders, --store-orders and --inproc-warmup must be zero or more")
    if opts.py_spy and not (Path(sys.executable).parent / "py-spy").exists():
        p.error("--py-spy needs py-spy beside this Python: .venv/bin/pip install py-spy")
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    started = begin("core", opts.quick)
    cr.fd_limit(4 * max(opts.subscribers, default=1) + 2048)
    report = Report()
    print(flush=True)
    with contextlib.ExitStack() as stack:
        floor_tmp = cr.new_tmp(stack, "floor")
        with contextlib.ExitStack() as floor_stack:
            floor_service = cr.start_floor(floor_stack, floor_tmp)
            floor = run_async(measure_floor(floor_service, opts, report))
        http_sections = {"1", "2", "3", "4", "6"} & opts.sections
        for backend in opts.backends if http_sections else []:
            with contextlib.ExitStack() as server_stack:
                pg = start_postgres(server_stack) if backend == "postgres" else None
                tmp = cr.new_tmp(server_stack, backend)
                service = cr.start_ordex(server_stack, tmp, backend, pg)
                try:
                    res = run_async(measure_ordex(service, backend, opts, report))
                except Exception:
                    print(f"--- {backend} service log (tail) ---\n"
                          f"{service.procs.server.log_tail()}", file=sys.stderr)
                    raise
            print_profile(report, res)
            figures_http(report, res, floor, opts)
            report.detail()
        if "5" in opts.sections:
            figure_inproc(report, measure_inprocess(opts, report))
            report.detail()
        if "6" in opts.sections and opts.store_orders:
            flats = measure_store(stack, opts, report)
            base = flats[0]
            flat_figure(report, "6b", f"0 -> {opts.store_orders} orders in the store, sqlite, "
                        "no ANALYZE", base, flats[1], floor)
            flat_figure(report, "6c", f"0 -> {opts.store_orders} orders in the store, sqlite, "
                        "after ANALYZE", base, flats[2], floor)
            report.detail()
        if "7" in opts.sections and opts.subscribers:
            figures_fan(report, measure_fanout(stack, opts, report), floor)
    report.summary()
    finish(started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
