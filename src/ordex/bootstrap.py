"""Wiring: settings -> store, clock, services. The one place that picks adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ordex.clock import Clock, SystemClock
from ordex.config import Settings
from ordex.domain.validation import PricePolicy
from ordex.services.accounts import AccountService
from ordex.services.demo import seed_demo, seed_instruments
from ordex.services.orders import OrderService
from ordex.services.queries import Queries
from ordex.services.ratelimit import SlidingWindowLimiter
from ordex.store.database import Database
from ordex.store.migrate import upgrade


@dataclass
class Services:
    settings: Settings
    db: Database
    clock: Clock
    orders: OrderService
    accounts: AccountService
    queries: Queries
    limiter: SlidingWindowLimiter
    demo_keys: dict[str, str] = field(default_factory=dict)

    async def close(self) -> None:
        await self.db.dispose()


def build(settings: Settings, clock: Clock | None = None) -> Services:
    clock = clock or SystemClock()
    if settings.is_sqlite:
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url(), echo=settings.sql_echo)
    policy = PricePolicy(price_band=settings.price_band,
                         market_buffer=settings.market_order_buffer)
    return Services(
        settings=settings, db=db, clock=clock,
        orders=OrderService(db, clock, policy),
        accounts=AccountService(db, clock),
        queries=Queries(db, clock),
        limiter=SlidingWindowLimiter(settings.rate_limit_per_minute),
    )


async def prepare(services: Services) -> None:
    """Migrate the schema, then seed reference data (and the demo, when enabled)."""
    await upgrade(services.db.writer)
    if services.settings.seed_demo:
        services.demo_keys = await seed_demo(services.db, services.clock,
                                             Path(services.settings.data_dir))
    else:
        await seed_instruments(services.db, services.clock)
