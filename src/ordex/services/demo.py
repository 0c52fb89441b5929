"""The embedded default's demo: a universe of US equities and a few accounts with keys."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from ordex.clock import Clock
from ordex.domain.accounts import Role
from ordex.domain.instruments import Instrument, InstrumentStatus
from ordex.files import write_private
from ordex.services.accounts import AccountService
from ordex.store.database import Database
from ordex.store.uow import UnitOfWork

_A = InstrumentStatus.ACTIVE
_CENT = Decimal("0.01")
_ONE = Decimal(1)

# symbol, name, reference price, status
UNIVERSE: list[tuple[str, str, str, InstrumentStatus]] = [
    ("AAPL", "Apple Inc.", "189.50", _A),
    ("MSFT", "Microsoft Corporation", "415.20", _A),
    ("GOOGL", "Alphabet Inc. Class A", "171.30", _A),
    ("AMZN", "Amazon.com, Inc.", "182.75", _A),
    ("NVDA", "NVIDIA Corporation", "121.40", _A),
    ("META", "Meta Platforms, Inc.", "502.10", _A),
    ("TSLA", "Tesla, Inc.", "248.60", _A),
    ("JPM", "JPMorgan Chase & Co.", "198.90", _A),
    ("V", "Visa Inc.", "276.35", _A),
    ("JNJ", "Johnson & Johnson", "152.80", _A),
    ("WMT", "Walmart Inc.", "68.45", _A),
    ("PG", "Procter & Gamble Company", "166.20", _A),
    ("XOM", "Exxon Mobil Corporation", "113.70", _A),
    ("UNH", "UnitedHealth Group Incorporated", "512.40", _A),
    ("HD", "The Home Depot, Inc.", "345.10", _A),
    ("KO", "The Coca-Cola Company", "62.85", _A),
    ("PEP", "PepsiCo, Inc.", "171.90", _A),
    ("DIS", "The Walt Disney Company", "101.25", _A),
    ("NFLX", "Netflix, Inc.", "640.50", _A),
    ("INTC", "Intel Corporation", "30.15", _A),
    ("AMD", "Advanced Micro Devices, Inc.", "158.30", _A),
    ("BAC", "Bank of America Corporation", "39.80", _A),
    ("CSCO", "Cisco Systems, Inc.", "47.60", _A),
    ("SIVBQ", "SVB Financial Group", "0.35", InstrumentStatus.SUSPENDED),
    ("BBBYQ", "Bed Bath & Beyond Inc.", "0.08", InstrumentStatus.DELISTED),
]

DEMO_ACCOUNTS: list[tuple[str, Role, Decimal, dict[str, Decimal]]] = [
    ("alice", Role.TRADER, Decimal("100000"), {"AAPL": Decimal(200), "MSFT": Decimal(50)}),
    ("bob", Role.TRADER, Decimal("25000"), {"TSLA": Decimal(40)}),
    ("carol", Role.COMPLIANCE, Decimal(0), {}),
    ("admin", Role.ADMIN, Decimal(0), {}),
]

KEYS_FILE = "demo-keys.json"


def demo_instruments() -> list[Instrument]:
    return [Instrument(symbol, name, _CENT, _ONE, status, Decimal(ref))
            for symbol, name, ref, status in UNIVERSE]


async def seed_instruments(db: Database, clock: Clock) -> None:
    """Insert the demo universe's instruments that are missing; leave existing ones alone."""
    now = clock.now()
    async with UnitOfWork(db) as uow:
        have = {i.symbol for i in await uow.repo.instruments()}
        for instrument in demo_instruments():
            if instrument.symbol not in have:
                await uow.repo.upsert_instrument(instrument, now)
        await uow.commit()


async def seed_demo(db: Database, clock: Clock, data_dir: Path) -> dict[str, str]:
    """Seed instruments and demo accounts once; return the demo keys (kept in the data dir)."""
    await seed_instruments(db, clock)
    keys_path = data_dir / KEYS_FILE
    keys: dict[str, str] = json.loads(keys_path.read_text()) if keys_path.exists() else {}
    service = AccountService(db, clock)
    changed = False
    for name, role, cash, held in DEMO_ACCOUNTS:
        async with UnitOfWork(db) as uow:
            existing = await uow.repo.account_by_name(name)
        if existing is None:
            costs = {i.symbol: i.reference_price for i in demo_instruments()}
            issued = await service.create(
                name, role, cash, positions={s: (q, costs[s]) for s, q in held.items()})
            keys[name] = issued.api_key
            changed = True
        elif name not in keys:
            keys[name] = await service.rotate_key(existing.id)
            changed = True
    if changed:
        _write_keys(keys_path, keys)
    return keys


def _write_keys(path: Path, keys: dict[str, str]) -> None:
    """Written once at seeding, readable by the owner only, replaced atomically."""
    write_private(path, json.dumps(keys, indent=2))
