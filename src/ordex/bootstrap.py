"""Wiring: settings -> store, clock, services. The one place that picks adapters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from ordex.bus.memory import QUOTES, MemoryBus
from ordex.clock import Clock, SystemClock
from ordex.config import Settings, VenueSpec
from ordex.domain.journal import JournalEntry
from ordex.domain.routing import Venues
from ordex.domain.sending import RetryPolicy
from ordex.domain.validation import PricePolicy
from ordex.engine.core import Core
from ordex.engine.engine import ExecutionEngine
from ordex.engine.ledger import Ledger
from ordex.engine.marketdata import MarketData
from ordex.engine.recovery import RecoverySettings
from ordex.files import private_dir, private_file
from ordex.metrics import MetricsLog
from ordex.services.accounts import AccountService
from ordex.services.command_port import CommandHandler, CommandPort, InProcessPort
from ordex.services.demo import seed_demo, seed_instruments
from ordex.services.feed import EventFeed
from ordex.services.orders import OrderService
from ordex.services.queries import Queries
from ordex.services.ratelimit import SlidingWindowLimiter
from ordex.store.database import Database
from ordex.store.idempotency import StoredKeys
from ordex.store.migrate import upgrade
from ordex.venues.base import Venue


@dataclass
class Services:
    settings: Settings
    db: Database
    clock: Clock
    bus: MemoryBus
    market: MarketData
    orders: OrderService
    accounts: AccountService
    queries: Queries
    limiter: SlidingWindowLimiter
    metrics: MetricsLog
    feed: EventFeed
    core: Core
    commands: CommandPort  # how the API hands commands to the engine
    engine: ExecutionEngine | None = None
    handler: CommandHandler | None = None  # the engine's side of ``commands``
    demo_keys: dict[str, str] = field(default_factory=dict)
    # made here from the settings: closed with the service
    owned_venues: list[Venue] = field(default_factory=list)

    async def start(self) -> None:
        self.metrics.start()
        await self.core.start()
        self.accounts.start()
        if self.engine is not None:
            await self.engine.start()

    async def close(self) -> None:
        if self.handler is not None:
            await self.handler.stop()
        await self.accounts.stop()
        if self.engine is not None:
            await self.engine.stop()
        await self.core.stop()
        await self.feed.close()
        for venue in self.owned_venues:
            close = getattr(venue, "close", None)
            if close is not None:
                close()
        await self.db.dispose()
        self.metrics.stop()


def _private_sqlite(url: str) -> None:
    """SQLite gives the -wal and -shm files the database file's own mode, so an owner-only
    database keeps its journal owner-only too."""
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        private_file(Path(database))
        for suffix in ("-wal", "-shm", "-journal"):
            side = Path(database + suffix)
            if side.exists():
                private_file(side)


def build(settings: Settings, clock: Clock | None = None, venue: Venue | None = None, *,
          venues: Mapping[str, Venue] | None = None) -> Services:
    """Wire the service. ``venue`` (the only one) or ``venues`` (by name, the settings'
    default venue among them, else the first) override those the settings name: tests pass
    their own."""
    clock = clock or SystemClock()
    if settings.is_sqlite:
        private_dir(Path(settings.data_dir))
        _private_sqlite(settings.resolved_database_url())
    db = Database(settings.resolved_database_url(), echo=settings.sql_echo)
    policy = PricePolicy(price_band=settings.price_band,
                         market_buffer=settings.market_order_buffer)
    bus = MemoryBus()
    market = MarketData()
    queries = Queries(db, clock, market.reference_price)
    feed = EventFeed(bus, queries)
    publish = feed.publish
    engine: ExecutionEngine | None = None
    owned: list[Venue] = []
    if venue is not None:
        venues = {venue.name: venue}
    if venues is not None:
        default = settings.default_venue_name if settings.default_venue_name in venues \
            else next(iter(venues))
        routes = Venues(tuple(venues), default)
    else:
        routes = Venues(tuple(s.name for s in settings.venue_specs()),
                        settings.default_venue_name)

    def notify(journal: list[JournalEntry]) -> None:
        publish([e for row in journal if (e := row.stream_event()) is not None])
        metrics.record(journal)
        if engine is not None:
            engine.wake()

    metrics = MetricsLog(Path(settings.data_dir) / "logs" / "metrics" / "orders.jsonl")
    core = Core(db, Ledger(), notify)
    if settings.execution_enabled:
        if venues is None:
            owned = [make_venue(spec, settings, clock) for spec in settings.venue_specs()]
            venues = {v.name: v for v in owned}
        engine = ExecutionEngine(
            core, venues, clock, market,
            lambda q: bus.publish(QUOTES, {"symbol": q.symbol}),
            default_venue=routes.default,
            policy=RetryPolicy(retries=settings.order_retry_max_attempts,
                               base_seconds=settings.retry_base_seconds,
                               ack_seconds=settings.ack_timeout_seconds,
                               order_timeout_seconds=settings.order_timeout_seconds),
            metrics=metrics, seed=settings.seed,
            recovery=RecoverySettings(stall_check_seconds=settings.stall_check_seconds,
                                      unsent_policy=settings.unsent_policy,
                                      ghost_policy=settings.ghost_policy))
    orders = OrderService(core, clock, policy, market.reference_price, venues=routes)
    accounts = AccountService(db, clock, core)
    handler = CommandHandler(orders, accounts, keys=StoredKeys(db), clock=clock)
    return Services(
        settings=settings, db=db, clock=clock, bus=bus, market=market,
        orders=orders, accounts=accounts, core=core,
        commands=InProcessPort(handler), handler=handler,
        queries=queries, feed=feed,
        limiter=SlidingWindowLimiter(settings.rate_limit_per_minute),
        metrics=metrics, engine=engine, owned_venues=owned,
    )


def make_venue(spec: VenueSpec, settings: Settings, clock: Clock) -> Venue:
    """A FIX venue over TCP (``--venue``), or an embedded simulated exchange in process, its
    book kept in the data dir under its name (a restart finds the orders it left resting)."""
    if spec.address is not None:
        from ordex.venues.fix.adapter import FixVenue

        return FixVenue.from_address(spec.address, settings, spec.name)
    from ordex.services.demo import demo_instruments
    from ordex.venues.simulated.exchange import SimulatedExchange
    from ordex.venues.simulated.inprocess import InProcessVenue
    from ordex.venues.simulated.journal import open_journal

    universe = demo_instruments()
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    exchange = SimulatedExchange(
        spec.name,
        [(i.symbol, i.reference_price, i.tick_size, i.lot_size) for i in universe],
        seed=settings.sim_seed, clock=clock.now,
        journal=open_journal(data_dir, spec.name, clock.now()))
    for instrument in universe:
        if not instrument.tradable:
            exchange.halt(instrument.symbol, instrument.status.value)
    return InProcessVenue(exchange, tick_interval=settings.sim_tick_seconds or None)


async def prepare(services: Services) -> None:
    """Migrate the schema, seed reference data (and the demo, when enabled), then start the
    execution core on what the store holds: from here on, it is the one writer of orders; the
    command handler reads back the idempotency keys it remembers."""
    await upgrade(services.db.writer)
    if services.settings.seed_demo:
        services.demo_keys = await seed_demo(services.db, services.clock,
                                             Path(services.settings.data_dir))
    else:
        await seed_instruments(services.db, services.clock)
    await services.core.start()
    if services.handler is not None:
        await services.handler.start()
