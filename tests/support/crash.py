"""The crash run: ``kill -9`` ordex at random moments under load, restart it, then check the books.

Parts, all on 127.0.0.1 in one working directory:

* the venue (``crash_venues``): either ``ordex venue`` as its own process, so that it lives
  through ordex's deaths and remembers every order it ever received (its admin ``GET /orders``),
  or the embedded default, the exchange inside ``ordex serve``, which dies with it and starts
  again from its journal in the data dir (read directly for the venue's truth);
* ordex, ``ordex serve`` as a subprocess on SQLite (``OrdexProcess``), killed with SIGKILL and
  started again on the same data dir;
* a load generator: several traders, each sending orders one after the other (market and limit,
  now and then a cancel), each order with its own ``client_order_id``. A request that gets no
  answer (the process died under it) is sent again, with the same ``client_order_id``, once ordex
  is back;
* a killer: the kill points are drawn uniformly over the order count (so the kills spread over the
  run whatever its speed), each a few random milliseconds after the order that reaches it starts.

After the load ordex is restarted once more (cleanly) and left to settle: until it and the venue
agree on every order's status (``disagreement``), 30 s at most. The venue's market is then frozen
(nothing fills any more) and ordex is given the reports still on their way. Then, with ordex up
(``check_working``): every order is final or legitimately working (a DAY or GTC limit order the
venue has open with the same filled quantity), and each trader's reserved cash is what the
orders working at the venue need. Every working order is then cancelled through the API: all
end final and no cash stays reserved. Last, ordex is stopped and the store (read directly with
``sqlite3``) is checked against what the traders were told and against the venue (``check``).
``Report.details()`` shows a few examples of each broken invariant.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import httpx

from ordex.domain.orders import OrderStatus, Routing
from tests.support.crash_venues import SYMBOLS, EmbeddedVenueSide, FixVenueSide, VenueSide
from tests.support.postgres import free_port
from tests.support.venue_process import _die_with_parent

CASH = Decimal("10000000")
LIMITS = {"rate_limit_per_minute": 100_000, "max_open_orders": 100_000,
          "max_position_shares": 1_000_000, "max_position_notional": 1_000_000_000,
          "max_order_notional": 100_000_000, "daily_loss_limit": 1_000_000_000}
OPEN = frozenset(s.value for s in OrderStatus if s.is_open)  # pending_new ... pending_cancel
# ordex's terminal status -> the venue's state for the same order (failed: any)
VENUE_STATE = {"filled": "filled", "cancelled": "cancelled", "rejected": "rejected",
               "expired": "expired"}
CENT = Decimal("0.01")
EXAMPLES = 3
T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# ordex as a subprocess


class OrdexProcess:
    """``ordex serve`` on SQLite in ``data_dir`` against the venue at ``venue_port`` (None: the
    embedded default); output is appended to ``log_path`` across restarts. ``start`` waits for
    ``/healthz``; ``env`` is added to the environment of each start."""

    def __init__(self, data_dir: Path, venue_port: int | None, log_path: Path) -> None:
        self.data_dir = data_dir
        self.venue_port = venue_port
        self.log_path = log_path
        self.env: dict[str, str] = {}
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "ordex.db"

    def _spawn(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"---- ordex start {self.starts} at {time.time():.3f}\n".encode())
            log.flush()
            venue = [] if self.venue_port is None else ["--venue",
                                                         f"127.0.0.1:{self.venue_port}"]
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ordex.cli", "serve", "--host", "127.0.0.1",
                 "--port", str(self.port), "--data-dir", str(self.data_dir), *venue,
                 "--log-level", "warning"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
                preexec_fn=_die_with_parent)

    def exited(self) -> bool:
        return self.proc is None or self.proc.poll() is not None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    async def start(self, deadline: float = 60.0) -> None:
        await asyncio.to_thread(self._spawn)
        end = time.monotonic() + deadline
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
            while time.monotonic() < end:
                if self.exited():
                    raise RuntimeError(f"ordex exited while starting:\n{self.log_tail()}")
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError(f"ordex did not answer /healthz within {deadline}s:\n"
                           f"{self.log_tail()}")

    async def kill(self) -> None:
        """SIGKILL, and reap it."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        await asyncio.to_thread(proc.wait)

    async def stop(self, grace: float = 20.0) -> None:
        """SIGTERM (a clean shutdown), SIGKILL after ``grace`` seconds."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)

    def stop_now(self) -> None:
        """For ``finally``: kill whatever is left, synchronously."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


# --------------------------------------------------------------------------------------------
# what the traders did


@dataclass
class Trader:
    name: str
    account_id: str
    key: str
    working: list[str] = field(default_factory=list)  # acked resting limit orders, to cancel

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@dataclass
class Submission:
    """One order request (``client_order_id``) and everything that came of it."""

    client_order_id: str
    trader: Trader
    body: dict[str, Any]
    outcomes: list[int | str] = field(default_factory=list)  # status codes or transport errors
    acked: bool = False
    order_id: str | None = None
    refusal: str | None = None  # the error codes of a 4xx
    unknown: bool = False  # never got an answer
    start: int = 0  # the ordex start (1 = before any kill) that answered it

    @property
    def retried(self) -> bool:
        return len(self.outcomes) > 1


@dataclass
class Report:
    submitted: int = 0
    acknowledged: int = 0
    unknown: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    retried: int = 0
    replayed: int = 0  # a retry answered 200: the first attempt had been stored
    cancels: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    restarts: list[float] = field(default_factory=list)  # seconds from SIGKILL to healthz
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    ghosts: list[str] = field(default_factory=list)
    violations: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    info: dict[str, object] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)
    load_seconds: float = 0.0
    elapsed: float = 0.0
    ordex_log: Counter[str] = field(default_factory=Counter)
    working_at_kills: list[int] = field(default_factory=list)  # resting DAY/GTC at each kill

    @property
    def violation_count(self) -> int:
        return sum(len(v) for v in self.violations.values())

    def summary_line(self) -> str:
        rate = self.submitted / self.load_seconds if self.load_seconds else 0.0
        return (f"crash run: submitted={self.submitted} acknowledged={self.acknowledged} "
                f"lost={len(self.lost)} duplicated={len(self.duplicated)} "
                f"ghosts={len(self.ghosts)} violations={self.violation_count} "
                f"kills={self.kills} orders/s={rate:.1f} elapsed={self.elapsed:.1f}")

    def details(self) -> str:
        lines = [
            "phases (s): " + ", ".join(f"{k}={v:.1f}" for k, v in self.phases.items()),
            f"restarts (SIGKILL to healthz, s): n={len(self.restarts)} "
            + (f"mean={sum(self.restarts) / len(self.restarts):.2f} "
               f"max={max(self.restarts):.2f} total={sum(self.restarts):.1f}"
               if self.restarts else ""),
            f"requests: acknowledged={self.acknowledged} refused={dict(self.refused)} "
            f"unknown={self.unknown} retried={self.retried} replayed_200={self.replayed}",
            f"cancels: {dict(self.cancels)}",
            f"DAY/GTC limit orders working in ordex at each kill: {self.working_at_kills}",
            "info: " + ", ".join(f"{k}={v}" for k, v in self.info.items()),
        ]
        for title, examples in (("lost", self.lost), ("duplicated", self.duplicated),
                                ("ghosts", self.ghosts), *self.violations.items()):
            if examples:
                lines.append(f"{title}: {len(examples)}")
                lines += [f"    {e}" for e in examples[:EXAMPLES]]
        if self.ordex_log:
            lines.append("ordex log, warnings and errors (most frequent first):")
            lines += [f"    {n:6d}  {msg}" for msg, n in self.ordex_log.most_common(8)]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# the run


class CrashRun:
    def __init__(self, workdir: Path, *, orders: int, kills: int, traders: int = 8,
                 seed: int = 1, tick_seconds: float = 0.05, settle_seconds: float = 30.0,
                 cancel_probability: float = 0.08, kill_jitter: float = 0.1,
                 venue: str = "fix") -> None:
        self.workdir = workdir
        self.orders = orders
        self.kills = kills
        self.trader_count = traders
        self.rng = random.Random(seed)
        self.seed = seed
        self.tick_seconds = tick_seconds
        self.settle_seconds = settle_seconds
        self.cancel_probability = cancel_probability
        self.kill_jitter = kill_jitter
        self.venue: VenueSide = (
            EmbeddedVenueSide(workdir / "ordex", tick_seconds) if venue == "embedded"
            else FixVenueSide(workdir, tick_seconds))
        self.ordex: OrdexProcess | None = None
        self.traders: list[Trader] = []
        self.submissions: list[Submission] = []
        self.report = Report()
        self.quotes: dict[str, dict[str, Any]] = {}
        self.up = asyncio.Event()
        self._progress = asyncio.Event()
        self._started = 0
        self._load_done = False
        self._killing = False

    async def run(self) -> Report:
        t0 = time.monotonic()
        report = self.report
        await self.venue.start()
        try:
            self.ordex = OrdexProcess(self.workdir / "ordex", self.venue.port,
                                      self.workdir / "ordex.log")
            self.ordex.env = self.venue.ordex_env(final=False)
            await self.ordex.start()
            self.up.set()
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
            async with httpx.AsyncClient(base_url=self.ordex.url, timeout=15,
                                         limits=limits) as client:
                await self._create_traders(client)
                await self._refresh_quotes(client)
                report.phases["setup"] = time.monotonic() - t0
                t1 = time.monotonic()
                await self._load(client)
                report.load_seconds = time.monotonic() - t1
                report.phases["load"] = report.load_seconds
                self.ordex.env = self.venue.ordex_env(final=True)
                await self._phase("final_restart", self._restart())
                report.info["settled"] = await self._phase("settle", self._settle())
                await self._phase("freeze", self._freeze())
                await self._phase("working", self._check_working(client))
                await self._phase("cancel_all", self._cancel_all(client))
            await self._phase("stop", self.ordex.stop())
            t3 = time.monotonic()
            venue_orders = await self.venue.orders()
            report.info.update(await self.venue.info())
            report.info["venue_orders"] = len(venue_orders)
            store = await asyncio.to_thread(read_store, self.ordex.db_path)
            check(report, self.submissions, self.traders, store, venue_orders)
            report.ordex_log = summarize_log(self.ordex.log_path)
            report.phases["check"] = time.monotonic() - t3
        finally:
            if self.ordex is not None:
                self.ordex.stop_now()
            self.venue.stop()
        report.elapsed = time.monotonic() - t0
        return report

    async def _phase(self, name: str, step: Awaitable[T]) -> T:
        t0 = time.monotonic()
        try:
            return await step
        finally:
            self.report.phases[name] = time.monotonic() - t0

    async def _restart(self) -> None:
        assert self.ordex is not None
        await self.ordex.stop()
        await self.ordex.start()

    # ---- set-up ----------------------------------------------------------------------------

    async def _create_traders(self, client: httpx.AsyncClient) -> None:
        assert self.ordex is not None
        keys = json.loads(await asyncio.to_thread(
            (self.ordex.data_dir / "demo-keys.json").read_text))
        admin = {"Authorization": f"Bearer {keys['admin']}"}
        for i in range(self.trader_count):
            r = await client.post("/v1/admin/accounts", headers=admin, json={
                "name": f"crash{i}", "role": "trader", "cash": str(CASH), "allow_short": True})
            assert r.status_code == 201, r.text
            body = r.json()
            account_id = body["account"]["id"]
            r = await client.patch(f"/v1/admin/accounts/{account_id}", headers=admin,
                                   json=LIMITS)
            assert r.status_code == 200, r.text
            self.traders.append(Trader(f"crash{i}", account_id, body["api_key"]))

    async def _refresh_quotes(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/v1/quotes", headers=self.traders[0].headers)
        if r.status_code == 200:
            self.quotes = {q["symbol"]: q for q in r.json()["quotes"]}
        elif not self.quotes:
            raise RuntimeError(f"no quotes from ordex: {r.status_code} {r.text}")

    # ---- load and kills --------------------------------------------------------------------

    async def _load(self, client: httpx.AsyncClient) -> None:
        """The traders until every order is sent, the killer until every kill is done; a
        failure of either (ordex not coming back, say) ends the load at once."""
        load = asyncio.gather(*(self._trader_loop(client, t, random.Random(self.rng.random()))
                                for t in self.traders))
        killing = asyncio.create_task(self._killer())
        watching = asyncio.create_task(self._watchdog())
        quoting = asyncio.create_task(self._quote_loop(client))
        try:
            pending: set[asyncio.Future[Any]] = {load, killing, watching}
            while not load.done():
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done - {load}:
                    failure = task.exception()
                    if failure is not None:
                        raise failure
            await load
            self._load_done = True
            self._progress.set()
            await killing
        finally:
            tasks = (load, killing, watching, quoting)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _kill_points(self) -> list[int]:
        """Order numbers at which to kill, uniform over the run (not the first or last 2%)."""
        low, high = max(1, self.orders // 50), max(2, self.orders - self.orders // 50)
        return sorted(self.rng.randint(low, high) for _ in range(self.kills))

    async def _killer(self) -> None:
        assert self.ordex is not None
        for point in self._kill_points():
            while self._started < point and not self._load_done:
                self._progress.clear()
                await self._progress.wait()
            await asyncio.sleep(self.rng.uniform(0, self.kill_jitter))
            self._killing = True
            self.up.clear()
            t0 = time.monotonic()
            await self.ordex.kill()
            self.report.kills += 1
            resting = await asyncio.to_thread(_resting_count, self.ordex.db_path)
            self.report.working_at_kills.append(resting)
            await self.ordex.start()
            self.report.restarts.append(time.monotonic() - t0)
            self._killing = False
            self.up.set()

    async def _watchdog(self) -> None:
        """ordex dying when nobody killed it is a finding: note it and start it again."""
        assert self.ordex is not None
        while True:
            await asyncio.sleep(0.25)
            if not self._killing and self.up.is_set() and self.ordex.exited():
                self._killing = True
                self.up.clear()
                self.report.violations["ordex exited by itself"].append(
                    f"at {self._started} orders: {self.ordex.log_tail(400)!r}")
                await self.ordex.start()
                self._killing = False
                self.up.set()

    async def _quote_loop(self, client: httpx.AsyncClient) -> None:
        while True:
            await asyncio.sleep(0.5)
            try:
                await self._refresh_quotes(client)
            except httpx.TransportError:
                pass

    async def _trader_loop(self, client: httpx.AsyncClient, trader: Trader,
                           rng: random.Random) -> None:
        while self._started < self.orders:
            self._started += 1
            n = self._started
            self._progress.set()
            sub = Submission(f"crash-{trader.name}-{n:06d}", trader, self._order_body(rng))
            sub.body["client_order_id"] = sub.client_order_id
            self.submissions.append(sub)
            await self._submit(client, sub)
            if trader.working and rng.random() < self.cancel_probability:
                victim = trader.working.pop(rng.randrange(len(trader.working)))
                await self._cancel(client, trader, victim)

    def _order_body(self, rng: random.Random) -> dict[str, Any]:
        symbol = rng.choice(SYMBOLS)
        body: dict[str, Any] = {"symbol": symbol, "side": rng.choice(["buy", "sell"]),
                                "quantity": str(rng.randint(1, 10))}
        if rng.random() < 0.35:
            body["type"] = "market"
            if rng.random() < 0.25:
                body["max_slippage_pct"] = "0.5"
            return body
        quote = self.quotes.get(symbol, {})
        bid, ask = quote.get("bid"), quote.get("ask")
        mid = (Decimal(bid) + Decimal(ask)) / 2 if bid and ask else \
            Decimal(quote.get("last") or quote["reference_price"])
        price = (mid * Decimal(1 + rng.uniform(-0.004, 0.004))).quantize(CENT)
        tif = rng.choices(["day", "gtc", "ioc", "fok"], [40, 20, 25, 15])[0]
        body.update(type="limit", limit_price=str(price), time_in_force=tif)
        if tif in ("day", "gtc") and rng.random() < 0.1:
            body["timeout_seconds"] = rng.randint(1, 5)
        return body

    async def _submit(self, client: httpx.AsyncClient, sub: Submission,
                      patience: float = 90.0) -> None:
        """Send until an answer comes; without one (ordex died under the request) send again,
        the same ``client_order_id``, once ordex is back."""
        end = time.monotonic() + patience
        while time.monotonic() < end:
            await self.up.wait()
            try:
                r = await client.post("/v1/orders", json=sub.body, headers=sub.trader.headers)
            except httpx.TransportError as exc:
                sub.outcomes.append(type(exc).__name__)
                await asyncio.sleep(0.05)
                continue
            sub.outcomes.append(r.status_code)
            if r.status_code >= 500 or r.status_code == 429:
                await asyncio.sleep(0.2)
                continue
            if r.is_success:
                sub.acked = True
                sub.order_id = r.json()["id"]
                sub.start = self.ordex.starts if self.ordex else 0
                if sub.body.get("type") == "limit" and sub.body["time_in_force"] in ("day",
                                                                                      "gtc"):
                    sub.trader.working.append(sub.order_id)
            else:
                try:
                    codes = [e["code"] for e in r.json().get("errors", [])]
                except (ValueError, AttributeError, KeyError, TypeError):
                    codes = []
                sub.refusal = ",".join(codes) or str(r.status_code)
            return
        sub.unknown = True

    async def _cancel(self, client: httpx.AsyncClient, trader: Trader, order_id: str) -> None:
        for _ in range(20):
            await self.up.wait()
            try:
                r = await client.delete(f"/v1/orders/{order_id}", headers=trader.headers)
            except httpx.TransportError:
                self.report.cancels["no answer"] += 1
                await asyncio.sleep(0.05)
                continue
            self.report.cancels[str(r.status_code)] += 1
            if r.status_code < 500:
                return

    # ---- the end ---------------------------------------------------------------------------

    async def _call(self, client: httpx.AsyncClient, method: str, path: str,
                    trader: Trader) -> httpx.Response:
        """One request after the load, sent again if a connection kept from before a restart
        has gone stale."""
        for attempt in range(5):
            try:
                return await client.request(method, path, headers=trader.headers)
            except httpx.TransportError:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.2)
        raise AssertionError("unreachable")

    async def _reserved(self, client: httpx.AsyncClient) -> dict[str, Decimal]:
        reserved = {}
        for trader in self.traders:
            r = await self._call(client, "GET", "/v1/account", trader)
            assert r.status_code == 200, r.text
            reserved[trader.account_id] = Decimal(r.json()["reserved_cash"])
        return reserved

    async def _check_working(self, client: httpx.AsyncClient) -> None:
        """Once nothing moves: each order is final or legitimately working, and the reserved
        cash is what the working orders need."""
        assert self.ordex is not None
        venue_orders = await self.venue.orders()
        store = await asyncio.to_thread(read_store, self.ordex.db_path)
        reserved = await self._reserved(client)
        check_working(self.report, self.submissions, self.traders, store, venue_orders,
                      reserved)

    async def _cancel_all(self, client: httpx.AsyncClient, deadline: float = 30.0) -> None:
        """Cancel every order still working, through the API: all must end final, and no cash
        may stay reserved once nothing is working."""
        assert self.ordex is not None
        store = await asyncio.to_thread(read_store, self.ordex.db_path)
        traders = {t.account_id: t for t in self.traders}
        working = [o for o in store.orders.values() if o["status"] in OPEN]
        self.report.info["working_before_cancel_all"] = len(working)
        for o in working:
            trader = traders.get(o["trader_id"])
            if trader is not None:
                r = await self._call(client, "DELETE", f"/v1/orders/{o['id']}", trader)
                self.report.cancels[f"final {r.status_code}"] += 1
        end = time.monotonic() + deadline
        while True:
            rows = await asyncio.to_thread(_order_states, self.ordex.db_path)
            still = [(oid, status) for oid, status, _ in rows if status in OPEN]
            if not still or time.monotonic() >= end:
                break
            await asyncio.sleep(0.2)
        v = self.report.violations
        for oid, status in still:
            v["still working after cancelling everything"].append(f"{oid} {status}")
        for account_id, cash in (await self._reserved(client)).items():
            if cash != 0:
                v["cash reserved once nothing is working"].append(
                    f"{traders[account_id].name}: {cash} reserved")

    async def _settle(self) -> bool:
        """Wait until ordex and the venue agree on where every order stands (``disagreement``;
        at least: no order ordex has open is finished at the venue), ``settle_seconds`` at
        most. True if they got there; what is left is reported by ``check``."""
        assert self.ordex is not None
        end = time.monotonic() + self.settle_seconds
        while True:
            # the venue first: what it has finished, ordex may have applied by the time we read
            venue = {o["client_order_id"]: o["status"] for o in await self.venue.orders()}
            rows = await asyncio.to_thread(_order_states, self.ordex.db_path)
            waiting = Counter(kind for oid, status, _ in rows
                              if (kind := disagreement(status, venue.get(oid))) is not None)
            if not waiting:
                return True
            if time.monotonic() >= end:
                self.report.info["unsettled_after_deadline"] = dict(waiting)
                return False
            await asyncio.sleep(0.5)

    async def _freeze(self, deadline: float = 10.0) -> None:
        """Halt every traded symbol at the venue (nothing fills any more), then give ordex the
        reports still on their way: until what it holds stops changing."""
        assert self.ordex is not None
        await self.venue.freeze()
        end = time.monotonic() + deadline
        last: object = None
        stable = 0
        while time.monotonic() < end and stable < 3:
            await asyncio.sleep(0.5)
            now = await asyncio.to_thread(_order_states, self.ordex.db_path)
            stable = stable + 1 if now == last else 0
            last = now


# --------------------------------------------------------------------------------------------
# reading the store


@dataclass
class Store:
    orders: dict[str, dict[str, Any]]
    fills: list[dict[str, Any]]
    positions: dict[str, dict[str, Decimal]]
    cash: dict[str, Decimal]
    logs: list[dict[str, Any]]


def _uuid(value: Any) -> str:
    return str(UUID(str(value)))


def _connect(db_path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(db_path, timeout=30)
    con.row_factory = sqlite3.Row
    return con


def _order_states(db_path: Path) -> list[tuple[str, str, str]]:
    con = _connect(db_path)
    try:
        rows = con.execute("SELECT id, status, filled_quantity FROM orders ORDER BY id")
        return [(_uuid(r["id"]), r["status"], r["filled_quantity"]) for r in rows]
    finally:
        con.close()


def _resting_count(db_path: Path) -> int:
    """Open DAY and GTC limit orders in the store (read right after a kill)."""
    con = _connect(db_path)
    try:
        placeholders = ",".join("?" * len(OPEN))
        return int(con.execute(
            f"SELECT count(*) FROM orders WHERE type = 'limit' AND time_in_force IN "
            f"('day', 'gtc') AND status IN ({placeholders})", sorted(OPEN)).fetchone()[0])
    finally:
        con.close()


def read_store(db_path: Path) -> Store:
    con = _connect(db_path)
    try:
        orders = {}
        for r in con.execute("SELECT * FROM orders"):
            row = dict(r)
            row["id"] = _uuid(row["id"])
            row["trader_id"] = _uuid(row["trader_id"])
            row["quantity"] = Decimal(row["quantity"])
            row["filled_quantity"] = Decimal(row["filled_quantity"])
            orders[row["id"]] = row
        fills = []
        for r in con.execute("SELECT order_id, trader_id, symbol, side, quantity, price, "
                             "commission, exec_id, venue FROM fills"):
            fills.append({"order_id": _uuid(r["order_id"]), "trader_id": _uuid(r["trader_id"]),
                          "symbol": r["symbol"], "side": r["side"],
                          "quantity": Decimal(r["quantity"]), "price": Decimal(r["price"]),
                          "commission": Decimal(r["commission"]), "exec_id": r["exec_id"],
                          "venue": r["venue"]})
        positions: dict[str, dict[str, Decimal]] = defaultdict(dict)
        for r in con.execute("SELECT account_id, symbol, quantity FROM positions"):
            positions[_uuid(r["account_id"])][r["symbol"]] = Decimal(r["quantity"])
        cash = {_uuid(r["id"]): Decimal(r["cash"])
                for r in con.execute("SELECT id, cash FROM accounts")}
        logs = []
        for r in con.execute("SELECT order_id, action, status, details FROM journal "
                             "WHERE order_id IS NOT NULL"):
            details = r["details"]
            logs.append({"order_id": _uuid(r["order_id"]), "action": r["action"],
                         "status": r["status"],
                         "details": json.loads(details) if isinstance(details, str)
                         else details or {}})
        return Store(orders, fills, positions, cash, logs)
    finally:
        con.close()


# --------------------------------------------------------------------------------------------
# the checks


def check(report: Report, submissions: list[Submission], traders: list[Trader], store: Store,
          venue_orders: list[dict[str, Any]]) -> None:
    """Fill ``report`` with what was asked and answered, and every broken invariant."""
    v = report.violations
    report.submitted = len(submissions)
    report.acknowledged = sum(s.acked for s in submissions)
    report.unknown = sum(s.unknown for s in submissions)
    report.refused = Counter(s.refusal for s in submissions if s.refusal)
    report.retried = sum(s.retried for s in submissions)
    report.replayed = sum(s.acked and s.retried and s.outcomes[-1] == 200 for s in submissions)
    mine = {t.account_id for t in traders}
    orders = store.orders
    by_client: dict[tuple[str, str], list[str]] = defaultdict(list)
    for o in orders.values():
        if o["client_order_id"] is not None:
            by_client[o["trader_id"], o["client_order_id"]].append(o["id"])

    # 1. every order a trader was told about (2xx) is in the store, under the id it was told
    for s in submissions:
        if not s.acked:
            continue
        stored = by_client.get((s.trader.account_id, s.client_order_id), [])
        if s.order_id not in stored:
            report.lost.append(f"{s.client_order_id} ({s.trader.name}) answered {s.outcomes} "
                               f"with id {s.order_id}; the store has {stored or 'nothing'}")
    unknown_stored = sum(bool(by_client.get((s.trader.account_id, s.client_order_id)))
                         for s in submissions if s.unknown)
    report.info["unknown_but_stored"] = unknown_stored

    # 2. no order reached the venue twice: neither one ClOrdID as two venue orders, nor one
    #    trader's client_order_id as two ordex orders that both reached the venue
    venue_count = Counter(o["client_order_id"] for o in venue_orders)
    for cl_ord_id, n in venue_count.items():
        if n > 1:
            report.duplicated.append(f"ClOrdID {cl_ord_id} is {n} orders at the venue")
    for (trader_id, client_order_id), ids in by_client.items():
        reached = [i for i in ids if i in venue_count]
        if len(reached) > 1:
            report.duplicated.append(f"client_order_id {client_order_id} of {trader_id} reached "
                                     f"the venue as {reached}")

    # 3. every venue order is an ordex order
    for o in venue_orders:
        if o["client_order_id"] not in orders:
            report.ghosts.append(f"venue order {o['venue_order_id']} ClOrdID "
                                 f"{o['client_order_id']} {o['side']} {o['quantity']} "
                                 f"{o['symbol']} {o['status']} filled {o['filled_quantity']}")

    # 4. positions and cash are what the fills say (as tests/sim/test_invariants.py computes)
    fill_keys = Counter((f["venue"], f["exec_id"]) for f in store.fills)
    for key, n in fill_keys.items():
        if n > 1:
            v["fill counted twice"].append(f"{key} booked {n} times")
    by_order: dict[str, Decimal] = defaultdict(Decimal)
    fills_of: dict[str, set[str]] = defaultdict(set)
    held: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    cash: dict[str, Decimal] = dict.fromkeys(mine, CASH)
    for f in store.fills:
        by_order[f["order_id"]] += f["quantity"]
        fills_of[f["order_id"]].add(f["exec_id"])
        buy = f["side"] == "buy"
        held[f["trader_id"]][f["symbol"]] += f["quantity"] if buy else -f["quantity"]
        notional = f["quantity"] * f["price"]
        if f["trader_id"] in cash:
            cash[f["trader_id"]] += -(notional + f["commission"]) if buy \
                else notional - f["commission"]
    for t in traders:
        want = {s: q for s, q in held[t.account_id].items() if q}
        have = {s: q for s, q in store.positions.get(t.account_id, {}).items() if q}
        for symbol in sorted(set(want) | set(have)):
            if want.get(symbol, 0) != have.get(symbol, 0):
                v["position differs from fills"].append(
                    f"{t.name} {symbol}: position {have.get(symbol, 0)}, fills say "
                    f"{want.get(symbol, 0)}")
        if store.cash.get(t.account_id) != cash[t.account_id]:
            v["cash differs from fills"].append(
                f"{t.name}: cash {store.cash.get(t.account_id)}, fills say {cash[t.account_id]}")

    # 5. each order's filled quantity is its fills, and the venue's
    venue_by_id = {o["client_order_id"]: o for o in venue_orders}
    for o in orders.values():
        if o["filled_quantity"] != by_order.get(o["id"], 0):
            v["filled quantity differs from fills"].append(
                f"{o['id']} {o['status']}: filled {o['filled_quantity']}, fills "
                f"{by_order.get(o['id'], 0)}")
        seen = venue_by_id.get(o["id"])
        venue_filled = Decimal(seen["filled_quantity"]) if seen else Decimal(0)
        venue_execs = {f["exec_id"] for f in seen["fills"]} if seen else set()
        booked = fills_of.get(o["id"], set())
        if venue_filled != o["filled_quantity"] or venue_execs != booked:
            v["venue fills differ"].append(
                f"{o['id']} {o['symbol']} {o['side']} {o['quantity']}: ordex {o['status']} "
                f"filled {o['filled_quantity']}, venue "
                + (f"{seen['status']} filled {venue_filled}" if seen else "never received it")
                + (f"; venue fills not in ordex {sorted(venue_execs - booked)}"
                   if venue_execs - booked else "")
                + (f"; ordex fills not at the venue {sorted(booked - venue_execs)}"
                   if booked - venue_execs else ""))

    # 6. the execution log: an 'execute' row for every order sent, a 'fill' row for every fill
    logged_fills = {(e["order_id"], e["details"].get("exec_id")) for e in store.logs
                    if e["action"] == "fill"}
    # the dispatcher's 'execute' rows (sent to the venue); a report that is not a fill, cancel or
    # reject is logged as 'execute' too, with the report's exec_id
    executes = Counter(e["order_id"] for e in store.logs
                       if e["action"] == "execute" and "exec_id" not in e["details"])
    for f in store.fills:
        if (f["order_id"], f["exec_id"]) not in logged_fills:
            v["fill missing from the execution log"].append(
                f"{f['order_id']} fill {f['exec_id']} {f['quantity']} @ {f['price']}")
    for oid in sorted(set(fills_of) | (set(venue_by_id) & set(orders))):
        if not executes[oid]:
            v["sent order without an 'execute' log row"].append(
                f"{oid} {orders[oid]['status']} (venue: "
                f"{venue_by_id[oid]['status'] if oid in venue_by_id else 'unknown'})")
    report.info["orders_sent_more_than_once"] = sum(n > 1 for n in executes.values())

    # 7. after settling, ordex and the venue agree on where each order stands
    for o in orders.values():
        seen = venue_by_id.get(o["id"])
        kind = disagreement(o["status"], seen["status"] if seen else None)
        if kind is not None:
            v[kind].append(
                f"{o['id']} {o['symbol']} {o['side']} {o['quantity']} "
                f"{o['type']}/{o['time_in_force']}: ordex {o['status']} filled "
                f"{o['filled_quantity']}, venue "
                + (f"{seen['status']} filled {seen['filled_quantity']}" if seen else "unknown")
                + f"; routed_at {o['routed_at']}, cancel_sent_at {o['cancel_sent_at']}")
    # 8. each order's stored venue lifecycle agrees with its columns, whatever the crash cut
    for o in orders.values():
        if o["routing"] != _routing_of_columns(o):
            v["stored routing differs from the order's columns"].append(
                f"{o['id']} {o['status']}: routing {o['routing']}, venue order id "
                f"{o['venue_order_id']}, routed_at {o['routed_at']}")
    report.info["ordex_orders"] = len(orders)
    report.info["fills"] = len(store.fills)
    report.info["open_at_end"] = sum(o["status"] in OPEN for o in orders.values())


def _routing_of_columns(o: dict[str, Any]) -> str:
    if o["status"] not in OPEN:
        return Routing.DONE.value
    if o["venue_order_id"] is not None:
        return Routing.AT_VENUE.value
    return Routing.PENDING.value if o["routed_at"] is None else Routing.UNCONFIRMED.value


def check_working(report: Report, submissions: list[Submission], traders: list[Trader],
                  store: Store, venue_orders: list[dict[str, Any]],
                  reserved: dict[str, Decimal]) -> None:
    """With nothing in motion: every order is final, or legitimately working (a DAY or GTC
    limit order the venue has open, with the filled quantity ordex has); and each trader's
    reserved cash is what their orders working at the venue still need (leaves times the price
    ordex reserved at)."""
    v = report.violations
    venue = {o["client_order_id"]: o for o in venue_orders}
    sent_under = {s.order_id: s.start for s in submissions if s.order_id}
    need: dict[str, Decimal] = {t.account_id: Decimal(0) for t in traders}
    working = after_restart = 0
    for o in store.orders.values():
        start = sent_under.get(o["id"], 0)
        after_restart += start > 1
        if o["status"] not in OPEN:
            continue
        seen = venue.get(o["id"])
        legit = (o["type"] == "limit" and o["time_in_force"] in ("day", "gtc")
                 and seen is not None and seen["status"] == "open"
                 and Decimal(seen["filled_quantity"]) == o["filled_quantity"]
                 and o["venue_order_id"] is not None)
        if not legit:
            v["neither final nor working at the venue"].append(
                f"{o['id']} {o['type']}/{o['time_in_force']} {o['status']} filled "
                f"{o['filled_quantity']} (sent under ordex start {start}); venue: "
                + (f"{seen['status']} filled {seen['filled_quantity']}" if seen else "unknown"))
            continue
        working += 1
        if o["side"] == "buy" and o["trader_id"] in need:
            need[o["trader_id"]] += ((o["quantity"] - Decimal(seen["filled_quantity"]))
                                     * Decimal(o["reserve_price"]))
    for t in traders:
        if reserved.get(t.account_id) != need[t.account_id]:
            v["reserved cash differs from the orders working at the venue"].append(
                f"{t.name}: reserved {reserved.get(t.account_id)}, working orders need "
                f"{need[t.account_id]}")
    report.info["working_at_end"] = working
    report.info["orders_sent_after_a_restart"] = after_restart


def disagreement(status: str, venue_status: str | None) -> str | None:
    """What is wrong between ordex's status of an order and the venue's state of it (None if
    unknown to the venue), once nothing is in motion; None if they agree."""
    if venue_status is None:
        return "open in ordex, never reached the venue" if status in OPEN else None
    if status in OPEN and venue_status != "open":
        return "open in ordex, finished at the venue"
    if status == "pending_cancel":
        return "cancel never reached the venue"
    if status not in OPEN and venue_status == "open":
        return "finished in ordex, working at the venue"
    if status not in OPEN and VENUE_STATE.get(status, venue_status) != venue_status:
        return "final status differs"
    return None


_NOISE: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"\b[0-9a-f]{32}\b"), "<uuid>"),
    (re.compile(r"\d+(\.\d+)?"), "N"),
]
_LEVEL = re.compile(r"^\S+Z (warning|error|critical) (\S+) (.*)$")


def summarize_log(path: Path) -> Counter[str]:
    """Warning and error lines of ordex's log, with ids and numbers blanked, counted."""
    counts: Counter[str] = Counter()
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return counts
    for line in text.splitlines():
        match = _LEVEL.match(line)
        if match is None:
            if line.startswith("Traceback"):
                counts["Traceback"] += 1
            continue
        message = f"{match.group(1)} {match.group(2)} {match.group(3)}"[:160]
        for pattern, replacement in _NOISE:
            message = pattern.sub(replacement, message)
        counts[message] += 1
    return counts
