"""Execution latency: order submission to stream events, and venue fill to stream event.

Run from the project root (see bench/README.md)::

    .venv/bin/python -m bench.bench_execution            # full run (under 3 minutes on 2 cores)
    .venv/bin/python -m bench.bench_execution --quick    # smoke run

For each venue (the simulated exchange embedded in ``ordex serve``, and the simulated exchange
behind TCP FIX, ``ordex venue`` plus ``ordex serve --venue``, when that command exists) and each
store (SQLite; PostgreSQL, a throwaway server), traders with their own account and their own
WebSocket stream (``/v1/stream``) send market orders for 1 share of the demo's liquid symbols:

(a) submit -> the first stream event of the order (``accepted``),
(b) submit -> the ``filled`` event on the stream,
(c) venue fill -> stream event: the fill's venue timestamp (``GET /v1/fills``) to the moment this
    client received the ``filled``/``partially_filled`` event (one machine, one clock).

With 1 trader (one order at a time) and with 100 traders in a paced open loop (each trader one
order every traders/rate seconds from a random phase; 40 orders/s in all by default).

The service, PostgreSQL and the venue's admin port bind to 127.0.0.1 (``ordex venue`` has no
flag for its FIX acceptor's address yet; the benchmark connects to it over 127.0.0.1). Server
processes, the PostgreSQL server and temporary directories are removed on exit, also after an
error, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import functools
import gc
import json
import math
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from tests.support.postgres import PostgresServer, free_port
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from bench import streams
from bench.bench_submit import Summary, begin, create_traders, finish, fmt
from bench.servers import (
    HOST,
    ROOT,
    ServiceProcess,
    new_store,
    new_tmp,
    ordex_command,
    run_async,
    service_env,
    start_postgres,
    start_serve,
)
from ordex.domain.instruments import InstrumentStatus
from ordex.services.demo import UNIVERSE

SYMBOLS = [symbol for symbol, _, _, status in UNIVERSE if status is InstrumentStatus.ACTIVE]
TERMINAL = {"filled", "rejected", "cancelled", "expired"}
FILL_TYPES = {"filled", "partially_filled"}
SPEC_EXEC_MS = 2000.0  # NFR-001 / success criterion 3: p95 submit -> confirm within 2 s
SPEC_STATUS_MS = 500.0  # NFR-002 / success criterion 4: p99 status update within 500 ms
AIM_FILLED_P99_MS = 20.0
AIM_FILL_EVENT_P99_MS = 10.0
ORDER_TIMEOUT_S = 15.0  # a single order that has not filled by then counts as unfinished
DRAIN_TIMEOUT_S = 15.0  # after a paced run, for the orders still in flight
VENUE_NAMES = {"inprocess": "in-process", "tcp": "tcp fix"}


# --------------------------------------------------------------------------------------------
# processes


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """SIGTERM the child if this benchmark dies without cleaning up (Linux only)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class ChildProcess(ServiceProcess):
    """``servers.ServiceProcess`` with extra environment, a parent-death signal, and the
    temporary directory as working directory (so that no default relative path, such as
    ``data/``, lands in the project)."""

    def __init__(self, args: list[str], log_path: Path,
                 extra_env: dict[str, str] | None = None) -> None:
        super().__init__(args, log_path)
        self.extra_env = extra_env or {}

    def start(self) -> None:
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.args, cwd=self.log_path.parent, env={**service_env(), **self.extra_env},
            stdout=self._log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None)

    def wait_port(self, port: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.args[1]} exited with {self.proc.returncode}:\n"
                                   + self.log_tail())
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"nothing listens on {HOST}:{port}:\n" + self.log_tail())


def _help(*args: str) -> tuple[int, str]:
    try:
        done = subprocess.run([ordex_command(), *args, "--help"], cwd=ROOT, env=service_env(),
                              capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, str(exc)
    return done.returncode, done.stdout + done.stderr


@dataclass
class TcpSupport:
    available: bool
    note: str
    venue_help: str = ""
    serve_help: str = ""


def detect_tcp_venue() -> TcpSupport:
    """``ordex venue --help`` exits 0 when the TCP FIX venue command exists."""
    code, venue_help = _help("venue")
    if code != 0:
        return TcpSupport(False, f"`ordex venue --help` exited with {code}: the TCP FIX venue "
                                 "command is not available in this build")
    _, serve_help = _help("serve")
    return TcpSupport(True, "", venue_help, serve_help)


# --------------------------------------------------------------------------------------------
# traders and their streams


def _epoch(stamp: str | None) -> float | None:
    return None if stamp is None else datetime.fromisoformat(stamp).timestamp()


@dataclass(eq=False)
class Track:
    """One order: when it was sent, and what its stream said about it, when."""

    cid: str
    symbol: str
    due: float = 0.0  # perf_counter of the intended send (paced runs)
    sent: float = 0.0  # perf_counter just before the POST
    sent_wall: float = 0.0  # time.time() at the same moment
    answered: float | None = None  # perf_counter of the HTTP answer
    order_id: str | None = None
    error: str | None = None
    first_at: float | None = None  # perf_counter of the first stream event
    first_type: str | None = None
    accepted_stamp: str | None = None  # ordex's timestamp of the accepted event
    filled_at: float | None = None  # perf_counter of the "filled" event
    filled_stamp: str | None = None  # ordex's timestamp of the "filled" event
    # (seq, time.time() at receipt, ordex timestamp) of each filled/partially_filled event
    fill_events: list[tuple[int, float, str]] = field(default_factory=list)
    final: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def on_event(self, msg: dict[str, Any], now: float, wall: float) -> None:
        kind = msg.get("type")
        if self.first_at is None:
            self.first_at, self.first_type = now, kind
            if kind == "accepted":
                self.accepted_stamp = msg.get("timestamp")
        if kind in FILL_TYPES:
            self.fill_events.append((int(msg["seq"]), wall, str(msg.get("timestamp"))))
        status = msg.get("status")
        if status == "filled" and self.filled_at is None:
            self.filled_at, self.filled_stamp = now, msg.get("timestamp")
        if status in TERMINAL and self.final is None:
            self.final = status
            self.done.set()


class Trader:
    """One account and its WebSocket stream; its orders by client order id."""

    def __init__(self, index: int, key: str, label: str) -> None:
        self.index = index
        self.key = key
        self.label = label
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.tracks: dict[str, Track] = {}
        self.count = 0
        self.unknown_events = 0
        self.stream_error: str | None = None
        self.ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None

    async def connect(self, ws_url: str) -> None:
        """Open the stream and wait for ``subscribed``, so that no event of ours is missed."""
        self.ws = await streams.subscribe(ws_url, self.key, within=30)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        clock, wall_clock = time.perf_counter, time.time
        try:
            async for text in self.ws:
                now, wall = clock(), wall_clock()
                msg = json.loads(text)
                if "seq" not in msg:
                    continue  # heartbeat
                track = self.tracks.get(msg.get("client_order_id") or "")
                if track is None:
                    self.unknown_events += 1
                else:
                    track.on_event(msg, now, wall)
        except ConnectionClosed as exc:
            self.stream_error = f"stream closed: {exc}"

    async def close(self) -> None:
        await streams.close(self.ws, self._reader)

    def new_order(self) -> tuple[Track, bytes]:
        n = self.count
        self.count += 1
        symbol = SYMBOLS[(self.index * 7 + n) % len(SYMBOLS)]
        cid = f"{self.label}-{self.index}-{n}"
        track = Track(cid, symbol)
        self.tracks[cid] = track
        body = json.dumps({"symbol": symbol, "side": "buy", "quantity": "1", "type": "market",
                           "client_order_id": cid}).encode()
        return track, body

    async def submit(self, http: httpx.AsyncClient, track: Track, body: bytes) -> None:
        track.sent, track.sent_wall = time.perf_counter(), time.time()
        try:
            r = await http.post("/v1/orders", content=body, headers=self.headers)
        except httpx.HTTPError as exc:
            track.error = f"{type(exc).__name__}: {exc}"
            track.done.set()
            return
        track.answered = time.perf_counter()
        if r.status_code == 201:
            track.order_id = r.json()["id"]
        else:
            track.error = f"HTTP {r.status_code}: {r.text[:300]}"
            track.done.set()

    async def fills(self, http: httpx.AsyncClient) -> list[dict[str, Any]]:
        """Every fill of the account (``GET /v1/fills``, newest first, paged)."""
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 1000}
        while True:
            r = await http.get("/v1/fills", params=params, headers=self.headers)
            r.raise_for_status()
            page = r.json()
            found += page["fills"]
            if not page.get("next_cursor"):
                return found
            params["cursor"] = page["next_cursor"]


# --------------------------------------------------------------------------------------------
# runs


@dataclass
class RunResult:
    label: str  # "1" or "100@40"
    traders: int
    rate: float = 0.0  # paced runs: offered orders/s
    tracks: list[Track] = field(default_factory=list)
    wall_s: float = 0.0
    schedule_s: float = 0.0
    started: float = 0.0
    lags_ms: list[float] = field(default_factory=list)  # paced: actual minus intended send
    loop_lag_ms: list[float] = field(default_factory=list)  # this client's event loop
    server_cpu_s: float | None = None
    venue_cpu_s: float | None = None
    client_cpu_s: float = 0.0
    fills: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by order id
    unknown_events: int = 0
    stream_errors: list[str] = field(default_factory=list)
    idle_cpu: float | None = None  # the service's CPU share just before the run, no orders

    # figures ----------------------------------------------------------------------------

    def accepted_ms(self) -> list[float]:
        return [(t.first_at - t.sent) * 1000 for t in self.tracks
                if t.first_at is not None and t.order_id is not None]

    def filled_ms(self) -> list[float]:
        return [(t.filled_at - t.sent) * 1000 for t in self.tracks
                if t.filled_at is not None and t.order_id is not None]

    def fill_to_event_ms(self) -> tuple[list[float], int, bool]:
        """Per fill event: time.time() at receipt minus the venue's timestamp of that fill. The
        k-th fill event of an order goes with its k-th fill in venue time. Also: events that
        found no fill, and whether every venue timestamp is on a whole millisecond."""
        out: list[float] = []
        unmatched = 0
        whole_ms = True
        for t in self.tracks:
            if not t.fill_events or t.order_id is None:
                continue
            fills = sorted(self.fills.get(t.order_id, []), key=lambda f: f["timestamp"])
            for k, (_, wall, _) in enumerate(sorted(t.fill_events)):
                if k >= len(fills):
                    unmatched += 1
                    continue
                at = datetime.fromisoformat(fills[k]["timestamp"])
                whole_ms = whole_ms and at.microsecond % 1000 == 0
                out.append((wall - at.timestamp()) * 1000)
        return out, unmatched, whole_ms and bool(out)

    def split_ms(self) -> list[tuple[str, list[float]]]:
        """(b) cut by the timestamps along the way (one machine clock): the client's send, ordex's
        accepted event, the venue's fill, ordex's filled event, the client's receipt."""
        parts: list[tuple[str, list[float]]] = [
            ("send->accepted stamp", []), ("accepted stamp->venue fill", []),
            ("venue fill->filled stamp", []), ("filled stamp->received", [])]
        for t in self.tracks:
            fills = self.fills.get(t.order_id or "", [])
            if (t.filled_at is None or t.accepted_stamp is None or t.filled_stamp is None
                    or not fills or not t.fill_events):
                continue
            accepted = _epoch(t.accepted_stamp)
            filled = _epoch(t.filled_stamp)
            venue = max(_epoch(f["timestamp"]) or 0.0 for f in fills)
            received = max(wall for _, wall, _ in t.fill_events)
            assert accepted is not None and filled is not None
            for (_, values), (a, b) in zip(parts, [(t.sent_wall, accepted), (accepted, venue),
                                                   (venue, filled), (filled, received)],
                                           strict=True):
                values.append((b - a) * 1000)
        return parts

    @property
    def sent(self) -> int:
        return sum(1 for t in self.tracks if t.sent)

    @property
    def errors(self) -> list[str]:
        return [t.error for t in self.tracks if t.error]

    @property
    def unfinished(self) -> int:
        return sum(1 for t in self.tracks if t.order_id is not None and t.final is None)

    @property
    def not_filled(self) -> int:
        return sum(1 for t in self.tracks if t.final not in (None, "filled"))

    @property
    def first_not_accepted(self) -> int:
        return sum(1 for t in self.tracks if t.first_type not in (None, "accepted"))

    def achieved(self) -> float:
        """Filled orders per second, from the schedule's start to the last "filled" event."""
        done = [t.filled_at for t in self.tracks if t.filled_at is not None]
        span = max(done) - self.started if done else 0.0
        return len(done) / span if span > 0 else float("nan")


async def loop_monitor(samples: list[float], stop: asyncio.Event, period: float = 0.01) -> None:
    """How late this client's event loop wakes up: the bound on its own measurement error."""
    clock = time.perf_counter
    while not stop.is_set():
        t0 = clock()
        await asyncio.sleep(period)
        samples.append(max(0.0, (clock() - t0 - period) * 1000))


@dataclass
class Procs:
    server: ChildProcess
    venue: ChildProcess | None = None


async def idle_cpu(procs: Procs, seconds: float = 1.0) -> float | None:
    """The service's CPU share (1.0 = one core) while no order is sent: market ticks, quotes,
    idle streams."""
    await asyncio.sleep(0.3)  # let the previous step's work finish
    before = procs.server.cpu_seconds()
    await asyncio.sleep(seconds)
    after = procs.server.cpu_seconds()
    return None if before is None or after is None else (after - before) / seconds


@contextlib.contextmanager
def py_spy(opts: argparse.Namespace, procs: Procs, name: str) -> Iterator[None]:
    """With ``--py-spy DIR``: sample the service (and the venue) while the run lasts, into
    collapsed-stack files (``py-spy record --gil --format raw``: the thread holding the GIL, so
    Python CPU time; SQLite's own C work in aiosqlite's thread releases the GIL)."""
    recorders: list[subprocess.Popen[bytes]] = []
    if opts.py_spy:
        tool = Path(sys.executable).parent / "py-spy"
        out = Path(opts.py_spy)
        out.mkdir(parents=True, exist_ok=True)
        targets = [("server", procs.server), ("venue", procs.venue)]
        for role, proc in targets:
            if proc is None or proc.proc is None:
                continue
            recorders.append(subprocess.Popen(
                [str(tool), "record", "--pid", str(proc.proc.pid), "--rate", "250", "--gil",
                 "--format", "raw", "--nonblocking", "--output",
                 str(out / f"{name}-{role}.txt")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL))
        time.sleep(0.5)  # py-spy attaches
    try:
        yield
    finally:
        for rec in recorders:
            rec.send_signal(signal.SIGINT)
        for rec in recorders:
            try:
                rec.wait(timeout=30)
            except subprocess.TimeoutExpired:
                rec.kill()
                rec.wait()


async def measured(result: RunResult, procs: Procs, opts: argparse.Namespace, name: str,
                   work: Callable[[], Any]) -> None:
    with py_spy(opts, procs, name):
        await _measured(result, procs, work)


async def _measured(result: RunResult, procs: Procs, work: Callable[[], Any]) -> None:
    gc.collect()
    stop = asyncio.Event()
    monitor = asyncio.create_task(loop_monitor(result.loop_lag_ms, stop))
    cpu0 = time.process_time()
    srv0 = procs.server.cpu_seconds()
    ven0 = procs.venue.cpu_seconds() if procs.venue else None
    t0 = time.perf_counter()
    try:
        await work()
    finally:
        result.wall_s = time.perf_counter() - t0
        result.client_cpu_s = time.process_time() - cpu0
        srv1 = procs.server.cpu_seconds()
        if srv0 is not None and srv1 is not None:
            result.server_cpu_s = srv1 - srv0
        ven1 = procs.venue.cpu_seconds() if procs.venue else None
        if ven0 is not None and ven1 is not None:
            result.venue_cpu_s = ven1 - ven0
        stop.set()
        await monitor


async def one_at_a_time(http: httpx.AsyncClient, trader: Trader, count: int, gap: float,
                        result: RunResult) -> None:
    """One order, wait for its final event (or the timeout), pause ``gap`` s, the next."""
    result.started = time.perf_counter()
    for _ in range(count):
        track, body = trader.new_order()
        result.tracks.append(track)
        await trader.submit(http, track, body)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(track.done.wait(), ORDER_TIMEOUT_S)
        await asyncio.sleep(gap)


async def paced(http: httpx.AsyncClient, traders: list[Trader], rate: float, seconds: float,
                rng: random.Random, result: RunResult) -> None:
    """Open loop: every trader sends an order every ``len(traders) / rate`` s from a random phase
    until ``seconds`` have passed, whether or not its previous orders have filled; then waits
    (up to DRAIN_TIMEOUT_S) for the orders in flight."""
    interval = len(traders) / rate
    result.started = start = time.perf_counter() + 0.05
    end = start + seconds
    in_flight: set[asyncio.Task[None]] = set()

    async def trader_loop(trader: Trader, due: float) -> None:
        clock = time.perf_counter
        while due < end:
            wait = due - clock()
            if wait > 0:
                await asyncio.sleep(wait)
            track, body = trader.new_order()
            track.due = due
            result.tracks.append(track)
            result.lags_ms.append((clock() - due) * 1000)
            task = asyncio.create_task(trader.submit(http, track, body))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            due += interval

    await asyncio.gather(*(trader_loop(t, start + rng.uniform(0, interval)) for t in traders))
    result.schedule_s = time.perf_counter() - start
    if in_flight:
        await asyncio.wait(list(in_flight), timeout=DRAIN_TIMEOUT_S)
    pending = [t.done.wait() for t in result.tracks if t.order_id is not None and t.final is None]
    if pending:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*pending), DRAIN_TIMEOUT_S)


async def collect_fills(http: httpx.AsyncClient, traders: list[Trader],
                        result: RunResult) -> None:
    gate = asyncio.Semaphore(8)

    async def one(trader: Trader) -> list[dict[str, Any]]:
        async with gate:
            return await trader.fills(http)

    wanted = {t.order_id for t in result.tracks if t.order_id}
    for found in await asyncio.gather(*(one(t) for t in traders)):
        for f in found:
            if f["order_id"] in wanted:
                result.fills.setdefault(f["order_id"], []).append(f)
    for trader in traders:
        result.unknown_events += trader.unknown_events
        if trader.stream_error:
            result.stream_errors.append(trader.stream_error)


# --------------------------------------------------------------------------------------------
# one service (a store and a venue)


@dataclass
class Combo:
    backend: str
    venue: str
    setup_s: float = 0.0
    total_s: float = 0.0  # from the first process started to the last one stopped
    phases: list[tuple[str, float]] = field(default_factory=list)  # wall seconds
    runs: list[RunResult] = field(default_factory=list)
    warmup_filled: int = 0
    log_tail: str = ""
    failed: str | None = None  # why this service could not be measured


async def measure(base_url: str, admin_key: str, opts: argparse.Namespace, procs: Procs,
                  combo: Combo, setup_started: float) -> None:
    connections = opts.traders + 40
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections,
                          keepalive_expiry=2.0)  # under uvicorn's 5 s keep-alive
    async with httpx.AsyncClient(base_url=base_url, trust_env=False, limits=limits,
                                 timeout=httpx.Timeout(60.0)) as http:
        keys = await create_traders(http, admin_key, 2 + opts.traders)
        warm = Trader(0, keys[0], "warm")
        solo = Trader(1, keys[1], "solo")
        crowd = [Trader(i, key, "crowd") for i, key in enumerate(keys[2:])]
        everyone = [warm, solo, *crowd]
        ws_url = base_url.replace("http://", "ws://") + "/v1/stream"
        try:
            gate = asyncio.Semaphore(20)

            async def connect(trader: Trader) -> None:
                async with gate:
                    await trader.connect(ws_url)

            # The crowd connects after the one-trader run, so that one trader is alone.
            await asyncio.gather(*(connect(t) for t in (warm, solo)))
            combo.setup_s = time.perf_counter() - setup_started
            clock = time.perf_counter()

            def phase(name: str) -> None:
                nonlocal clock
                now = time.perf_counter()
                combo.phases.append((name, now - clock))
                clock = now

            # Warm-up on an account of its own: code paths, pools, the venue session.
            scratch = RunResult("warm-up", 1)
            await one_at_a_time(http, warm, opts.warmup, 0.01, scratch)
            burst = [warm.new_order() for _ in range(min(20, opts.traders))]
            await asyncio.gather(*(warm.submit(http, t, b) for t, b in burst))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(t.done.wait() for t, _ in burst)),
                                       ORDER_TIMEOUT_S)
            scratch.tracks += [t for t, _ in burst]
            combo.warmup_filled = sum(1 for t in scratch.tracks if t.final == "filled")
            phase("warm-up")
            if not combo.warmup_filled:
                errors = scratch.errors
                raise RuntimeError("no warm-up order filled"
                                   + (f"; first error: {errors[0]}" if errors else
                                      f" within {ORDER_TIMEOUT_S:g} s"))
            single = RunResult("1", 1)
            single.idle_cpu = await idle_cpu(procs)
            await measured(single, procs, opts, f"{combo.backend}-{combo.venue}-1",
                           functools.partial(one_at_a_time, http, solo, opts.single_orders,
                                             opts.single_gap_ms / 1000, single))
            await collect_fills(http, [solo], single)
            combo.runs.append(single)
            phase("1 trader")
            if opts.rates:
                await asyncio.gather(*(connect(t) for t in crowd))
            for rate in opts.rates:  # the same crowd at each rate, in turn
                many = RunResult(f"{opts.traders}@{rate:g}", opts.traders, rate=rate)
                many.idle_cpu = await idle_cpu(procs)
                rng = random.Random(opts.seed)
                await measured(many, procs, opts, f"{combo.backend}-{combo.venue}-{rate:g}",
                               functools.partial(paced, http, crowd, rate, opts.seconds, rng,
                                                 many))
                await collect_fills(http, crowd, many)
                combo.runs.append(many)
                phase(many.label)
        finally:
            await asyncio.gather(*(t.close() for t in everyone))
            # The service's stream handlers notice a client has left only when a bus message
            # (or the 15 s heartbeat) wakes them, and uvicorn's shutdown waits for them: one
            # more order wakes them all now.
            with contextlib.suppress(Exception):
                await asyncio.sleep(0.2)
                track, body = warm.new_order()
                await warm.submit(http, track, body)
                await asyncio.sleep(0.3)


def bench_combo(backend: str, venue: str, opts: argparse.Namespace, tcp: TcpSupport,
                pg: PostgresServer | None) -> Combo:
    started = time.perf_counter()
    combo = Combo(backend, venue)
    with contextlib.ExitStack() as stack:
        tmp = new_tmp(stack, f"ordex-bench-exec-{backend}-{venue}-")
        # On PostgreSQL the data dir still holds the FIX client's session store.
        store = new_store(backend, tmp / "data", pg, f"ordex_exec_{venue}")
        serve_args = store.serve
        extra_env: dict[str, str] = {}
        venue_proc: ChildProcess | None = None
        if venue == "tcp":
            port, admin_port = free_port(), free_port()
            args = [ordex_command(), "venue", "--port", str(port), "--admin-port",
                    str(admin_port)]
            if "--host" in tcp.venue_help:
                args += ["--host", HOST]
            if "--data-dir" in tcp.venue_help:  # its FIX session store
                args += ["--data-dir", str(tmp / "venue")]
            venue_proc = ChildProcess(args, tmp / "venue.log")
            stack.callback(venue_proc.stop)
            venue_proc.start()
            venue_proc.wait_port(port)
            venue_proc.wait_port(admin_port)
            address = f"{HOST}:{port}"
            if "--venue" in tcp.serve_help:
                serve_args = [*serve_args, "--venue", address]
            else:
                extra_env["ORDEX_VENUE"] = address
        server, base_url = start_serve(stack, serve_args, tmp / "server.log",
                                       functools.partial(ChildProcess, extra_env=extra_env))
        procs = Procs(server, venue_proc)
        try:
            run_async(measure(base_url, store.admin_key(), opts, procs, combo, started))
        except Exception:
            print(f"--- {backend}/{venue} service log (tail) ---\n{server.log_tail()}",
                  file=sys.stderr)
            if venue_proc is not None:
                print(f"--- venue log (tail) ---\n{venue_proc.log_tail()}", file=sys.stderr)
            raise
        if any(r.errors or r.unfinished or r.stream_errors for r in combo.runs):
            combo.log_tail = server.log_tail(10)
    combo.total_s = time.perf_counter() - started
    return combo


def bench_backend(backend: str, venues: list[str], opts: argparse.Namespace,
                  tcp: TcpSupport) -> list[Combo]:
    """Every venue on one store. A failure of the TCP venue (a command still being built) or of
    PostgreSQL's set-up is reported as such and the other rows go on; any other failure stops."""
    combos: list[Combo] = []
    with contextlib.ExitStack() as stack:
        pg: PostgresServer | None = None
        if backend == "postgres":
            try:
                pg = start_postgres(stack)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                note = f"PostgreSQL could not be started: {str(exc).splitlines()[0][:200]}"
                return [Combo(backend, venue, failed=note) for venue in venues]
        for venue in venues:
            try:
                combos.append(bench_combo(backend, venue, opts, tcp, pg))
            except Exception as exc:
                if venue != "tcp":
                    raise
                print(f"--- {backend}/tcp failed: {exc!r}", file=sys.stderr)
                combos.append(Combo(backend, venue, failed=f"{type(exc).__name__}: "
                                    f"{str(exc).splitlines()[0][:200] if str(exc) else ''}"))
    return combos


# --------------------------------------------------------------------------------------------
# report


def _verdict(value: float, limit: float) -> str:
    return "met" if value <= limit else "MISSED"


def _row(backend: str, venue: str, run: str, metric: str, values: list[float], spec: str,
         aim: str) -> None:
    s = Summary.of(values)
    print(f"   {backend:<8} {venue:<10} {run:>6}  {metric:<22} {s.n:>5} {fmt(s.p50):>7} "
          f"{fmt(s.p95):>7} {fmt(s.p99):>7} {fmt(s.max):>7}  {spec:<17} {aim}")


def _cpu(seconds: float | None, orders: int) -> str:
    return "-" if seconds is None or not orders else f"{seconds / orders * 1000:.1f}"


def report(combos: list[Combo], opts: argparse.Namespace, tcp: TcpSupport) -> None:
    print("Latency in ms. (a) submit -> first stream event of the order; (b) submit -> its "
          "\"filled\" event;")
    print("(c) the fill's venue timestamp (GET /v1/fills) -> this client receives the "
          "\"filled\"/\"partially_filled\" event.")
    print(f"   {'backend':<8} {'venue':<10} {'run':>6}  {'metric':<22} {'n':>5} {'p50':>7} "
          f"{'p95':>7} {'p99':>7} {'max':>7}  {'spec':<17} aim")
    for combo in combos:
        venue = VENUE_NAMES[combo.venue]
        if combo.failed:
            print(f"   {combo.backend:<8} {venue:<10} rows skipped: {combo.failed}")
        for run in combo.runs:
            a, b = Summary.of(run.accepted_ms()), Summary.of(run.filled_ms())
            c_values, _, _ = run.fill_to_event_ms()
            c = Summary.of(c_values)
            _row(combo.backend, venue, run.label, "(a) submit->accepted", run.accepted_ms(),
                 f"p95<=2s {_verdict(a.p95, SPEC_EXEC_MS)}", "-")
            _row("", "", "", "(b) submit->filled", run.filled_ms(),
                 f"p95<=2s {_verdict(b.p95, SPEC_EXEC_MS)}",
                 f"p99<{AIM_FILLED_P99_MS:g} {_verdict(b.p99, AIM_FILLED_P99_MS)}")
            _row("", "", "", "(c) venue fill->event", c_values,
                 f"p99<=500 {_verdict(c.p99, SPEC_STATUS_MS)}",
                 f"p99<{AIM_FILL_EVENT_P99_MS:g} {_verdict(c.p99, AIM_FILL_EVENT_P99_MS)}")
    if not tcp.available and "tcp" in opts.venues:
        print(f"   tcp fix rows skipped: {tcp.note}.")
    print()
    print("Runs:")
    print(f"   1 = one trader (own account and stream), {opts.single_orders} orders one at a "
          f"time, each sent {opts.single_gap_ms:g} ms after the previous one's final event.")
    for rate in opts.rates:
        print(f"   {opts.traders}@{rate:g} = paced open loop, not closed-loop saturation: "
              f"{opts.traders} traders (own account and stream each), each sending a 1-share "
              f"market order every {opts.traders / rate:.2f} s")
        print(f"      from a random phase (seed {opts.seed}) for {opts.seconds:g} s, "
              f"{rate:g} orders/s in all, without waiting for earlier orders; latency counts "
              "from the actual send.")
    print("   Orders: market buy 1 share, symbols rotating over the demo's "
          f"{len(SYMBOLS)} active ones; rate limit and max_open_orders raised per trader.")
    print("   spec: NFR-001/criterion 3 (p95 submit->filled <= 2 s; applied to (a) too), "
          "NFR-002/criterion 4 (p99 status update <= 500 ms).")
    print()
    for combo in (c for c in combos if not c.failed):
        venue = VENUE_NAMES[combo.venue]
        phases = ", ".join(f"{name} {seconds:.1f}" for name, seconds in combo.phases)
        print(f"   {combo.backend} / {venue}: {combo.warmup_filled} warm-up orders filled; "
              f"seconds: setup {combo.setup_s:.1f}, {phases}, in all {combo.total_s:.1f}")
        for run in combo.runs:
            filled = sum(1 for t in run.tracks if t.filled_at is not None)
            rate = f"{run.sent / run.schedule_s:.1f}" if run.schedule_s else "-"
            line = (f"      {run.label:>6}: {run.sent} sent, {filled} filled, "
                    f"{len(run.errors)} errors, {run.unfinished} unfinished, "
                    f"{run.not_filled} not filled; ")
            if run.schedule_s:
                line += (f"sent {rate}/s over {run.schedule_s:.1f} s, achieved "
                         f"{run.achieved():.1f} fills/s; ")
            else:
                line += f"{run.wall_s:.1f} s; "
            line += (f"CPU ms/order: service {_cpu(run.server_cpu_s, run.sent)}, "
                     + (f"venue {_cpu(run.venue_cpu_s, run.sent)}, " if combo.venue == "tcp"
                        else "")
                     + f"client {_cpu(run.client_cpu_s, run.sent)}")
            print(line)
            if run.rate and run.achieved() < 0.95 * run.rate:
                print(f"              OVERLOADED: the service kept up with {run.achieved():.1f} "
                      f"of the {run.rate:g} orders/s offered, so orders queued and the "
                      "latencies above grow with the run's length (--seconds)")
            if run.idle_cpu is not None:
                print(f"              service CPU with no orders (just before): "
                      f"{run.idle_cpu * 100:.0f}% of a core")
            lag = Summary.of(run.loop_lag_ms)
            extra = f"client loop lag p99 {fmt(lag.p99)} ms, max {fmt(lag.max)} ms"
            if run.lags_ms:
                send = Summary.of(run.lags_ms)
                extra += f"; send lag p99 {fmt(send.p99)} ms, max {fmt(send.max)} ms"
            _, unmatched, whole_ms = run.fill_to_event_ms()
            if unmatched:
                extra += f"; {unmatched} fill events without a fill"
            if whole_ms:
                extra += "; venue fill timestamps have millisecond resolution"
            if run.first_not_accepted:
                extra += f"; {run.first_not_accepted} orders whose first event was not accepted"
            if run.unknown_events:
                extra += f"; {run.unknown_events} events of unknown orders"
            print(f"              {extra}")
            parts = "; ".join(f"{name} {fmt(Summary.of(v).p50)}/{fmt(Summary.of(v).p99)}"
                              for name, v in run.split_ms())
            print(f"              (b) by timestamps, p50/p99 ms: {parts}")
            for error in run.errors[:1]:
                print(f"              ! first error: {error}")
            for error in run.stream_errors[:1]:
                print(f"              ! {len(run.stream_errors)} streams failed; first: {error}")
        if combo.log_tail:
            print("      service log tail:\n" + combo.log_tail)


# --------------------------------------------------------------------------------------------
# main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.bench_execution", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a short smoke run (small counts)")
    p.add_argument("--backends", default="sqlite,postgres",
                   help="comma-separated: sqlite, postgres (default both)")
    p.add_argument("--venues", default="inprocess,tcp",
                   help="comma-separated: inprocess, tcp (default both; tcp is skipped with a "
                   "note when `ordex venue` does not exist)")
    p.add_argument("--traders", type=int, default=100,
                   help="traders in the paced run (default 100)")
    p.add_argument("--rate", default="40",
                   help="aggregate orders/s of the paced run (default 40; 0 skips it); "
                   "comma-separated for several runs in turn, e.g. 20,40")
    p.add_argument("--seconds", type=float,
                   help="duration of the paced run's schedule (default 15; quick 5)")
    p.add_argument("--single-orders", type=int,
                   help="orders of the one-trader run (default 150; quick 30)")
    p.add_argument("--single-gap-ms", type=float, default=25.0,
                   help="pause after each order of the one-trader run (default 25)")
    p.add_argument("--warmup", type=int,
                   help="warm-up orders, one at a time, per service (default 30; quick 10)")
    p.add_argument("--seed", type=int, default=1, help="seed of the paced phases (default 1)")
    p.add_argument("--py-spy", metavar="DIR",
                   help="sample the service (and the venue) with py-spy during each run, into "
                   "collapsed-stack files in DIR (needs `pip install py-spy` in .venv)")
    opts = p.parse_args(argv)
    defaults = {"seconds": (15.0, 5.0), "single_orders": (150, 30), "warmup": (30, 10)}
    for name, (full, quick) in defaults.items():
        if getattr(opts, name) is None:
            setattr(opts, name, quick if opts.quick else full)
    opts.backends = [b.strip() for b in opts.backends.split(",") if b.strip()]
    if set(opts.backends) - {"sqlite", "postgres"} or not opts.backends:
        p.error("--backends takes sqlite and/or postgres")
    opts.venues = [v.strip() for v in opts.venues.split(",") if v.strip()]
    if set(opts.venues) - set(VENUE_NAMES) or not opts.venues:
        p.error("--venues takes inprocess and/or tcp")
    if opts.traders < 1 or opts.single_orders < 1 or opts.warmup < 1:
        p.error("--traders, --single-orders and --warmup must be at least 1")
    try:
        opts.rates = [float(r) for r in opts.rate.split(",") if r.strip()]
    except ValueError:
        p.error(f"--rate takes comma-separated numbers, not {opts.rate!r}")
    if not all(0 <= r < math.inf for r in opts.rates) or not 0 < opts.seconds < math.inf:
        p.error("--rate must be zero or more and --seconds above zero")
    opts.rates = [r for r in opts.rates if r > 0]
    if opts.py_spy and not (Path(sys.executable).parent / "py-spy").exists():
        p.error("--py-spy needs py-spy in the virtualenv: .venv/bin/pip install py-spy")
    if not 0 <= opts.single_gap_ms < math.inf:
        p.error("--single-gap-ms must be zero or more")
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    started = begin("execution", opts.quick)
    tcp = detect_tcp_venue() if "tcp" in opts.venues else TcpSupport(False, "not asked for")
    venues = [v for v in opts.venues if v != "tcp" or tcp.available]
    print("venues: in-process = the simulated exchange embedded in `ordex serve` (its default, "
          "market tick 0.25 s);")
    if not tcp.available:
        print(f"        tcp fix = `ordex venue` + `ordex serve --venue` (skipped: {tcp.note})")
    else:
        how = ("`--venue 127.0.0.1:P`" if "--venue" in tcp.serve_help else
               "ORDEX_VENUE=127.0.0.1:P (this `ordex serve` has no --venue flag yet)")
        print(f"        tcp fix = `ordex venue --port P --admin-port Q` (a process of its own, "
              f"default tick) and `ordex serve` with {how};")
        if "--host" not in tcp.venue_help:
            print("        note: `ordex venue` has no --host flag, its FIX acceptor listens on "
                  "0.0.0.0:P while it runs; the benchmark connects over 127.0.0.1 only")
    print(flush=True)
    combos: list[Combo] = []
    if venues:
        for backend in opts.backends:
            combos += bench_backend(backend, venues, opts, tcp)
    report(combos, opts, tcp)
    finish(started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
