"""Client-side runs of ``bench_core``: services as child processes, traders with streams, paced
open-loop runs with an overload guard, one-at-a-time runs, stream fan-out.

Builds on ``servers`` (processes), ``bench_submit`` (accounts, figures) and ``bench_execution``
(traders and their WebSocket streams, per-order tracks, CPU accounting of a run).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
from tests.support.postgres import PostgresServer, free_port
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from bench import servers, streams
from bench.bench_execution import (
    TERMINAL,
    ChildProcess,
    Procs,
    RunResult,
    Track,
    Trader,
    measured,
)
from bench.bench_submit import create_traders, percentile
from bench.lean_http import LeanClient
from bench.servers import HOST, ROOT, log_tail, new_store, start_serve
from ordex.services.demo import demo_instruments

ORDER_TIMEOUT_S = 15.0
SETTLE_MAX_S = 30.0
SETTLE_SHARE = 0.25  # of a core: the service has finished the previous run's work
REFERENCE = {i.symbol: i.reference_price for i in demo_instruments() if i.tradable}


# --------------------------------------------------------------------------------------------
# figures of a run


@dataclass
class CoreRun(RunResult):
    """A run of ``bench_execution.RunResult`` shape, plus what the overload guard saw."""

    offered: int = 0  # sends the schedule planned
    overloaded: bool = False
    stopped_after_s: float | None = None
    fills_expected: bool = True  # the floor answers, it does not fill
    passed: bool | None = None  # a step's verdict, taken when the run ended (late events of
    # an overloaded run may still arrive afterwards)

    def response_ms(self) -> list[float]:
        return [(t.answered - t.sent) * 1000 for t in self.tracks
                if t.answered is not None and t.order_id is not None]

    def done_ms(self) -> list[float]:
        """submit -> filled for ordex; submit -> response for the floor."""
        return self.filled_ms() if self.fills_expected else self.response_ms()

    @property
    def completed(self) -> int:
        return len(self.done_ms())

    @property
    def incomplete(self) -> int:
        """Sent orders without an error that never got to the end: not filled (ordex), or not
        answered (the floor)."""
        return self.sent - len(self.errors) - self.completed

    def achieved_rate(self) -> float:
        ends = [(t.filled_at if self.fills_expected else t.answered) for t in self.tracks]
        done = [e for e in ends if e is not None]
        span = max(done) - self.started if done else 0.0
        return len(done) / span if span > 0 else float("nan")

    def cpu_ms(self, *, net: bool) -> float | None:
        """Server CPU per sent order in ms; ``net`` less the idle share measured just before
        (market ticks, heartbeats) over the run's wall time."""
        if self.server_cpu_s is None or not self.sent:
            return None
        cpu = self.server_cpu_s
        if net and self.idle_cpu is not None:
            cpu = max(0.0, cpu - self.idle_cpu * self.wall_s)
        return cpu / self.sent * 1000

    def p(self, values: list[float], q: float) -> float:
        return percentile(sorted(values), q)


# --------------------------------------------------------------------------------------------
# processes


def fd_limit(wanted: int) -> None:
    """Raise this process's (and so its children's) open-file limit towards ``wanted``: a
    thousand WebSockets need as many descriptors on each side."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class MeteredChild(ChildProcess):
    """A child process whose CPU time is read at nanosecond resolution: the sum over its
    threads of ``/proc/PID/task/TID/schedstat`` (time on a CPU), where ``/proc/PID/stat`` counts
    whole clock ticks (10 ms), too coarse for a fraction of a millisecond per request. A thread
    that has ended since the previous reading keeps the time it had then."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._threads: dict[str, int] = {}
        self._ended_ns = 0

    def cpu_seconds(self) -> float | None:
        if self.proc is None:
            return None
        task_dir = Path(f"/proc/{self.proc.pid}/task")
        try:
            tids = [p.name for p in task_dir.iterdir()]
        except OSError:
            return super().cpu_seconds()
        now: dict[str, int] = {}
        for tid in tids:
            try:
                now[tid] = int((task_dir / tid / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
        if not now:
            return super().cpu_seconds()
        self._ended_ns += sum(ns for tid, ns in self._threads.items() if tid not in now)
        self._threads = now
        return (self._ended_ns + sum(now.values())) / 1e9


def child_env() -> dict[str, str]:
    """PYTHONPATH with the project root first, so that a child can ``-m bench.…`` from its own
    temporary working directory."""
    paths = [str(ROOT), *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)]
    return {"PYTHONPATH": os.pathsep.join(paths)}


@dataclass
class Service:
    """A started service (``ordex serve`` or the floor): its URL, admin key and process."""

    name: str
    base_url: str
    procs: Procs
    admin_key: str = ""
    data_dir: Path | None = None
    traders_made: int = 0

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/v1/stream"

    async def new_keys(self, http: BenchClient, count: int) -> list[str]:
        keys = await create_traders(http.admin, self.admin_key, count, first=self.traders_made)
        self.traders_made += count
        return keys


def start_floor(stack: contextlib.ExitStack, tmp: Path) -> Service:
    port = free_port()
    proc = MeteredChild([sys.executable, "-m", "bench.floor_app", "--host", HOST, "--port",
                         str(port)], tmp / "floor.log", child_env())
    stack.callback(proc.stop)
    proc.start()
    base = f"http://{HOST}:{port}"
    proc.wait_ready(base)
    return Service("floor", base, Procs(proc))


def new_tmp(stack: contextlib.ExitStack, prefix: str) -> Path:
    return servers.new_tmp(stack, f"ordex-bench-core-{prefix}-")


def start_ordex(stack: contextlib.ExitStack, tmp: Path, backend: str,
                pg: PostgresServer | None = None, *, database: str = "ordex_core",
                extra_env: dict[str, str] | None = None, data_dir: Path | None = None,
                name: str = "") -> Service:
    """``ordex serve`` on 127.0.0.1 as a child process: SQLite in ``data_dir`` (default a new
    one in ``tmp``, the demo seeded) or a new database on the PostgreSQL server ``pg``."""
    store = new_store(backend, data_dir or tmp / "data", pg, database)
    log = tmp / f"server{name}.log"
    try:
        proc, base = start_serve(stack, store.serve, log,
                                 functools.partial(MeteredChild, extra_env=extra_env))
        key = store.admin_key()
    except Exception:
        print(f"--- {backend} service log (tail) ---\n{log_tail(log)}", file=sys.stderr)
        raise
    return Service(f"{backend}{name}", base, Procs(proc), key, store.data_dir)


class BenchClient(LeanClient):
    """Orders go through the lean client (its ``post``); account set-up through httpx
    (``admin``), which the helpers of ``bench_submit`` take."""

    def __init__(self, base_url: str, connections: int) -> None:
        super().__init__(base_url, connections)
        limits = httpx.Limits(max_connections=20, max_keepalive_connections=20,
                              keepalive_expiry=2.0)  # under uvicorn's 5 s keep-alive
        self.admin = httpx.AsyncClient(base_url=base_url, trust_env=False, limits=limits,
                                       timeout=httpx.Timeout(60.0))

    async def aclose(self) -> None:
        await super().aclose()
        await self.admin.aclose()


def http_client(base_url: str, connections: int) -> BenchClient:
    return BenchClient(base_url, connections)


async def connect_all(traders: list[Trader], ws_url: str, parallel: int = 20) -> None:
    gate = asyncio.Semaphore(parallel)

    async def one(trader: Trader) -> None:
        async with gate:
            await trader.connect(ws_url)

    await asyncio.gather(*(one(t) for t in traders))


async def close_all(traders: list[Trader], http: BenchClient | None = None,
                    waker: Trader | None = None) -> None:
    """Close the streams; then one more order, so that the service's stream handlers notice at
    once that their clients left (they wake on a bus message) and its shutdown does not wait."""
    await asyncio.gather(*(t.close() for t in traders))
    if http is not None and waker is not None:
        with contextlib.suppress(Exception):
            await asyncio.sleep(0.2)
            track, body = waker.new_order()
            await waker.submit(http, track, body)
            await asyncio.sleep(0.3)


async def cpu_share(procs: Procs, seconds: float) -> float | None:
    before = procs.server.cpu_seconds()
    await asyncio.sleep(seconds)
    after = procs.server.cpu_seconds()
    return None if before is None or after is None else (after - before) / seconds


async def settle(procs: Procs) -> float:
    """Wait until the service is done with earlier work (its CPU share under SETTLE_SHARE of a
    core over half a second), at most SETTLE_MAX_S; returns the seconds waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < SETTLE_MAX_S:
        share = await cpu_share(procs, 0.5)
        if share is None or share < SETTLE_SHARE:
            break
    return time.perf_counter() - t0


async def run_measured(result: CoreRun, procs: Procs, work: Callable[[], Awaitable[Any]],
                       profile_dir: str | None = None, profile_name: str = "") -> CoreRun:
    """``work`` with the service's idle share measured just before, and its CPU, this
    client's CPU and the wall time over the run (``bench_execution.measured``); sampled by
    py-spy into ``profile_dir`` if given."""
    await asyncio.sleep(0.3)
    result.idle_cpu = await cpu_share(procs, 1.0)
    await measured(result, procs, SimpleNamespace(py_spy=profile_dir), profile_name, work)
    return result



# --------------------------------------------------------------------------------------------
# runs


async def one_by_one(http: BenchClient, trader: Trader, count: int, gap_s: float,
                     result: CoreRun, max_seconds: float | None = None) -> None:
    """One order at a time: sent, then (with fills expected) its final stream event awaited,
    then ``gap_s``; ``count`` orders or until ``max_seconds`` have passed."""
    result.started = t0 = time.perf_counter()
    for _ in range(count):
        if max_seconds is not None and time.perf_counter() - t0 >= max_seconds:
            break
        track, body = trader.new_order()
        result.tracks.append(track)
        await trader.submit(http, track, body)
        if result.fills_expected and track.error is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(track.done.wait(), ORDER_TIMEOUT_S)
        await asyncio.sleep(gap_s)
    result.offered = len(result.tracks)


async def paced(http: BenchClient, traders: list[Trader], rate: float, seconds: float,
                rng: random.Random, result: CoreRun, overload_s: float) -> None:
    """Open loop: each trader sends an order every ``len(traders) / rate`` s from a random phase
    for ``seconds``, whether or not its earlier orders are done (latency counts from the actual
    send). The guard stops the schedule as soon as an order has been unfinished (no answer, or
    with fills expected no final event) for ``overload_s``: the service is not keeping up, and
    waiting for a growing queue would only make the benchmark slow. Then waits for the orders in
    flight: up to ORDER_TIMEOUT_S, or 2 s after an overload (what is left counts as
    unfinished)."""
    interval = len(traders) / rate
    clock = time.perf_counter
    result.started = start = clock() + 0.05
    end = start + seconds
    phases = [start + rng.uniform(0, interval) for _ in traders]
    result.offered = sum(len(_schedule(p, interval, end)) for p in phases)
    stop = asyncio.Event()
    in_flight: set[asyncio.Task[None]] = set()

    def finished(t: Track) -> bool:
        if t.error is not None:
            return True
        return t.final is not None if result.fills_expected else t.answered is not None

    async def trader_loop(trader: Trader, due: float) -> None:
        while due < end and not stop.is_set():
            wait = due - clock()
            if wait > 0:
                await asyncio.sleep(wait)
                if stop.is_set():
                    return
            track, body = trader.new_order()
            track.due = due
            result.tracks.append(track)
            result.lags_ms.append((clock() - due) * 1000)
            task = asyncio.create_task(trader.submit(http, track, body))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            due += interval

    async def guard() -> None:
        oldest = 0
        while not stop.is_set():
            await asyncio.sleep(0.25)
            tracks = result.tracks
            while oldest < len(tracks) and finished(tracks[oldest]):
                oldest += 1
            if oldest < len(tracks) and tracks[oldest].sent \
                    and clock() - tracks[oldest].sent > overload_s:
                result.overloaded = True
                result.stopped_after_s = clock() - start
                stop.set()

    watchdog = asyncio.create_task(guard())
    try:
        await asyncio.gather(*(trader_loop(t, p) for t, p in zip(traders, phases, strict=True)))
        result.schedule_s = clock() - start
        wait = 2.0 if result.overloaded else ORDER_TIMEOUT_S
        if in_flight:
            await asyncio.wait(list(in_flight), timeout=wait)
        for task in list(in_flight):
            task.cancel()
        if result.fills_expected:
            pending = [t.done.wait() for t in result.tracks
                       if t.order_id is not None and t.final is None]
            if pending:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.gather(*pending),
                                           2.0 if result.overloaded else ORDER_TIMEOUT_S)
    finally:
        stop.set()
        watchdog.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watchdog
        for task in list(in_flight):
            task.cancel()


def _schedule(first: float, interval: float, end: float) -> list[float]:
    out = []
    due = first
    while due < end:
        out.append(due)
        due += interval
    return out


def resting_limit(trader: Trader) -> tuple[Track, bytes]:
    """A 1-share limit buy 8% under the reference price (inside the 10% band): it rests."""
    n = trader.count
    trader.count += 1
    symbols = list(REFERENCE)
    symbol = symbols[(trader.index + n) % len(symbols)]
    price = (REFERENCE[symbol] * Decimal("0.92")).quantize(Decimal("0.01"))
    cid = f"{trader.label}-{trader.index}-rest-{n}"
    track = Track(cid, symbol)
    trader.tracks[cid] = track
    body = json.dumps({"symbol": symbol, "side": "buy", "quantity": "1", "type": "limit",
                       "limit_price": str(price), "client_order_id": cid}).encode()
    return track, body


async def rest_orders(http: BenchClient, trader: Trader, count: int,
                      parallel: int = 4) -> list[str]:
    """``count`` resting limit orders for ``trader``, ``parallel`` at a time; the errors."""
    errors: list[str] = []
    left = count

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            track, body = resting_limit(trader)
            await trader.submit(http, track, body)
            if track.error:
                errors.append(track.error)

    await asyncio.gather(*(worker() for _ in range(parallel)))
    return errors


# --------------------------------------------------------------------------------------------
# stream fan-out


class Listener:
    """One WebSocket on a trader's stream that counts the events it receives and tells the
    ``FanOut`` when it has seen an order's final status."""

    def __init__(self, fan: FanOut) -> None:
        self.fan = fan
        self.ws: ClientConnection | None = None
        self.events = 0
        self.error: str | None = None
        self._reader: asyncio.Task[None] | None = None

    async def connect(self, ws_url: str, key: str) -> None:
        self.ws = await streams.subscribe(ws_url, key, within=60, max_size=None)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for text in self.ws:
                msg = json.loads(text)
                if "seq" not in msg:
                    continue
                self.events += 1
                status = msg.get("status")
                if status in TERMINAL or (not self.fan.fills and status == "accepted"):
                    self.fan.saw_final(str(msg.get("client_order_id")))
        except ConnectionClosed as exc:
            self.error = f"stream closed: {exc}"

    async def close(self) -> None:
        await streams.close(self.ws, self._reader)


class FanOut:
    """``size`` listeners on one trader's stream; ``wait(cid)`` until every one of them has
    seen the order's final event (for the floor, which does not fill: its one event)."""

    def __init__(self, size: int, fills: bool = True) -> None:
        self.size = size
        self.fills = fills
        self.listeners = [Listener(self) for _ in range(size)]
        self._seen: dict[str, int] = {}
        self._done: dict[str, asyncio.Event] = {}

    async def connect(self, ws_url: str, key: str, parallel: int = 50) -> None:
        gate = asyncio.Semaphore(parallel)

        async def one(listener: Listener) -> None:
            async with gate:
                await listener.connect(ws_url, key)

        await asyncio.gather(*(one(x) for x in self.listeners))

    def saw_final(self, cid: str) -> None:
        self._seen[cid] = self._seen.get(cid, 0) + 1
        if self._seen[cid] >= self.size:
            self._event(cid).set()

    def _event(self, cid: str) -> asyncio.Event:
        return self._done.setdefault(cid, asyncio.Event())

    async def wait(self, cid: str, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._event(cid).wait(), seconds)
            return True
        except TimeoutError:
            return False

    @property
    def events(self) -> int:
        return sum(x.events for x in self.listeners)

    def reset_counts(self) -> None:
        for x in self.listeners:
            x.events = 0

    async def close(self) -> None:
        await asyncio.gather(*(x.close() for x in self.listeners))


@dataclass
class FanRun:
    subscribers: int
    run: CoreRun
    delivered: int = 0
    complete: int = 0  # orders every subscriber saw to the end
    stream_errors: int = 0
    notes: list[str] = field(default_factory=list)

    def per_order_ms(self) -> float | None:
        return self.run.cpu_ms(net=True)

    def per_event_us(self) -> float | None:
        cpu = self.run.cpu_ms(net=True)
        if cpu is None or not self.delivered:
            return None
        return cpu * self.run.sent / self.delivered * 1000

    @property
    def events_per_order(self) -> float:
        n = self.run.sent * self.subscribers
        return self.delivered / n if n else float("nan")


async def fan_run(http: BenchClient, service: Service, sender: Trader, fan: FanOut,
                  orders: int, gap_s: float, max_seconds: float) -> FanRun:
    """``orders`` market orders of ``sender`` one at a time, each awaited until every listener
    has its final event; the service's CPU over the run, the events delivered."""
    result = CoreRun(f"fan{fan.size}", fan.size, fills_expected=fan.fills)
    out = FanRun(fan.size, result)

    async def work() -> None:
        result.started = t0 = time.perf_counter()
        for _ in range(orders):
            if time.perf_counter() - t0 >= max_seconds:
                break
            track, body = sender.new_order()
            result.tracks.append(track)
            await sender.submit(http, track, body)
            if track.error is None and await fan.wait(track.cid, ORDER_TIMEOUT_S):
                out.complete += 1
            await asyncio.sleep(gap_s)

    fan.reset_counts()
    await run_measured(result, service.procs, work)
    await asyncio.sleep(0.2)
    out.delivered = fan.events
    out.stream_errors = sum(1 for x in fan.listeners if x.error)
    return out
