"""Stream delivery: server CPU per event with 0, 1, 100 and 1,000 subscribers on one trader's
stream.

Run from the project root (see bench/README.md)::

    .venv/bin/python -m bench.bench_stream                      # SQLite, 0/1/100/1000
    .venv/bin/python -m bench.bench_stream --backend postgres --subscribers 0,1,100

``ordex serve`` runs as a child process with the embedded simulated exchange. One trader opens
N WebSocket streams (``/v1/stream``, from this process), then sends ``--orders`` resting limit
orders one after the other; each order makes its events (accepted, acknowledged by the venue,
...). When every stream has received every event, the service's CPU time for the round (user
plus system, from /proc, less its idle rate measured just before) is divided by the events. The
row with 0 subscribers is the cost of the orders themselves; the last column is what each
subscriber adds per event it receives, which should not grow with the number of subscribers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection

from bench import streams
from bench.bench_submit import ORDER_BODY, begin, create_traders, finish
from bench.servers import ROOT, ServiceProcess, run_async, service_env, start_service

IDLE_SECONDS = 2.0
QUIET_SECONDS = 0.5


class StreamService(ServiceProcess):
    """``ordex serve`` allowed as many streams per trader as the largest round needs."""

    def __init__(self, args: list[str], log_path: Path, streams: int) -> None:
        super().__init__(args, log_path)
        self.streams = streams

    def start(self) -> None:
        self._log = self.log_path.open("wb")
        env = {**service_env(), "ORDEX_STREAM_CONNECTIONS_PER_TRADER": str(self.streams)}
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


@dataclass
class Round:
    subscribers: int
    events: int
    cpu_ms: float
    seconds: float

    @property
    def per_event(self) -> float:
        return self.cpu_ms / self.events if self.events else float("nan")


class Subscriber:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.last = 0
        self.received = 0
        self._target = 0
        self._reached = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for text in self.ws:
                message = json.loads(text)
                if "seq" in message:
                    self.last = message["seq"]
                    self.received += 1
                    if self.last >= self._target:
                        self._reached.set()

    async def reach(self, seq: int) -> None:
        self._target = seq
        if self.last < seq:
            self._reached.clear()
            await self._reached.wait()

    async def close(self) -> None:
        await self.ws.close()
        await self.task


async def subscribe(ws_url: str, key: str, after: int, compression: str | None) -> Subscriber:
    return Subscriber(await streams.subscribe(ws_url, key, after=after, within=60,
                                              compression=compression))


async def last_seq(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    r = await client.get("/v1/orders", headers=headers, params={"limit": 1})
    r.raise_for_status()
    return int(r.json()["last_seq"])


async def settle(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    """The trader's last seq once it has stopped moving."""
    seen = await last_seq(client, headers)
    while True:
        await asyncio.sleep(QUIET_SECONDS)
        now = await last_seq(client, headers)
        if now == seen:
            return now
        seen = now


async def one_round(client: httpx.AsyncClient, server: ServiceProcess, ws_url: str, key: str,
                    subscribers: int, orders: int, compression: str | None) -> Round:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    start_seq = await settle(client, headers)
    gate = asyncio.Semaphore(50)

    async def one() -> Subscriber:
        async with gate:
            return await subscribe(ws_url, key, start_seq, compression)

    subs = list(await asyncio.gather(*(one() for _ in range(subscribers))))
    await asyncio.sleep(1.0)  # backlog reads done
    idle0 = server.cpu_seconds() or 0.0
    await asyncio.sleep(IDLE_SECONDS)
    idle_rate = ((server.cpu_seconds() or 0.0) - idle0) / IDLE_SECONDS
    cpu0, t0 = server.cpu_seconds() or 0.0, time.perf_counter()
    for _ in range(orders):
        r = await client.post("/v1/orders", content=ORDER_BODY, headers=headers)
        if r.status_code != 201:
            raise RuntimeError(f"submit failed: {r.status_code} {r.text}")
    end_seq = await settle(client, headers)
    await asyncio.wait_for(asyncio.gather(*(s.reach(end_seq) for s in subs)), 600)
    elapsed = time.perf_counter() - t0
    cpu = ((server.cpu_seconds() or 0.0) - cpu0 - idle_rate * elapsed) * 1000
    bad = [s.received for s in subs if s.received != end_seq - start_seq]
    if bad:
        raise RuntimeError(f"streams received {set(bad)} events, expected {end_seq - start_seq}")
    for s in subs:
        await s.close()
    return Round(subscribers, end_seq - start_seq, cpu, elapsed)


async def measure(base_url: str, admin: str, server: ServiceProcess,
                  opts: argparse.Namespace) -> list[Round]:
    ws_url = base_url.replace("http://", "ws://") + "/v1/stream"
    async with httpx.AsyncClient(base_url=base_url, timeout=120, trust_env=False) as client:
        (key,) = await create_traders(client, admin, 1)
        compression = None if opts.no_compression else "deflate"
        await one_round(client, server, ws_url, key, 1, 3, compression)  # warm up
        return [await one_round(client, server, ws_url, key, n, opts.orders, compression)
                for n in opts.subscribers]


def start(backend: str, stack: contextlib.ExitStack, streams: int) -> tuple[str, str,
                                                                             ServiceProcess]:
    return start_service(backend, stack, ["--log-level", "warning"], label="stream",
                         process=functools.partial(StreamService, streams=streams))


def report(backend: str, rounds: list[Round], opts: argparse.Namespace) -> None:
    base = next((r for r in rounds if r.subscribers == 0), None)
    deflate = "without" if opts.no_compression else "with"
    print(f"\n{backend}: {opts.orders} resting limit orders per round, streams {deflate} "
          "permessage-deflate, server CPU (idle rate subtracted)")
    print(f"{'subscribers':>11} {'events':>7} {'CPU/event':>10} {'added/event':>12} "
          f"{'per delivery':>13} {'wall s':>7}")
    for r in rounds:
        added = per = "-"
        if base is not None and r.subscribers:
            extra = r.per_event - base.per_event
            added = f"{extra:.2f} ms"
            per = f"{extra / r.subscribers * 1000:.0f} us"
        print(f"{r.subscribers:>11} {r.events:>7} {r.per_event:>7.2f} ms {added:>12} "
              f"{per:>13} {r.seconds:>7.1f}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--subscribers", default="0,1,100,1000",
                   help="comma-separated stream counts, one round each (default 0,1,100,1000)")
    p.add_argument("--orders", type=int, default=10, help="orders per round (default 10)")
    p.add_argument("--no-compression", action="store_true",
                   help="streams without permessage-deflate (browsers and the websockets "
                        "client ask for it by default)")
    opts = p.parse_args(argv)
    opts.subscribers = [int(n) for n in opts.subscribers.split(",")]
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    started = begin("stream", quick=False)
    with contextlib.ExitStack() as stack:
        base_url, admin, server = start(opts.backend, stack, max(opts.subscribers) + 10)
        try:
            rounds = run_async(measure(base_url, admin, server, opts))
        except Exception:
            print(f"--- service log (tail) ---\n{server.log_tail()}", file=sys.stderr)
            raise
    report(opts.backend, rounds, opts)
    finish(started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
