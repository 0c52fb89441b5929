"""Account administration: create accounts, issue keys, set risk limits, authenticate."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from decimal import Decimal
from uuid import UUID

from ordex.clock import Clock
from ordex.domain.accounts import Account, RiskLimits, Role
from ordex.domain.errors import Code, DomainError, Violation
from ordex.domain.positions import Position
from ordex.ids import hash_api_key, new_api_key, new_id
from ordex.store.database import Database
from ordex.store.uow import UnitOfWork, reading


@dataclass(frozen=True, slots=True)
class IssuedKey:
    account: Account
    api_key: str


class AccountService:
    """Accounts and keys. Authentication results are kept for ``auth_ttl`` seconds, so a key
    revoked by another process stays usable for at most that long; this process forgets at once.
    """

    def __init__(self, db: Database, clock: Clock, auth_ttl: float = 5.0) -> None:
        self.db = db
        self.clock = clock
        self.auth_ttl = auth_ttl
        self._known: dict[str, tuple[float, Account]] = {}

    async def authenticate(self, api_key: str) -> Account | None:
        key_hash = hash_api_key(api_key)
        now = time.monotonic()
        hit = self._known.get(key_hash)
        if hit is not None and hit[0] > now:
            return hit[1]
        async with reading(self.db) as repo:
            account = await repo.account_by_key_hash(key_hash)
        if account is not None:
            if len(self._known) > 10_000:
                self._known.clear()
            self._known[key_hash] = (now + self.auth_ttl, account)
        return account

    async def create(self, name: str, role: Role, cash: Decimal = Decimal(0),
                     limits: RiskLimits | None = None, *, allow_short: bool = False,
                     api_key: str | None = None,
                     positions: dict[str, tuple[Decimal, Decimal]] | None = None) -> IssuedKey:
        """Create an account; ``positions`` maps symbol to (quantity, average cost)."""
        key = api_key or new_api_key()
        account = Account(id=new_id(), name=name, role=role, cash=cash, allow_short=allow_short,
                          limits=limits or RiskLimits())
        now = self.clock.now()
        async with UnitOfWork(self.db) as uow:
            if await uow.repo.account_by_name(name) is not None:
                raise DomainError(Violation(
                    Code.INVALID_VALUE, "name", f"An account named '{name}' already exists.",
                    "Choose another name."))
            await uow.repo.insert_account(account, hash_api_key(key), now)
            for symbol, (quantity, cost) in (positions or {}).items():
                await uow.repo.set_position(account.id, Position(
                    symbol, quantity, cost, Decimal(0)), now)
            await uow.commit()
        return IssuedKey(account, key)

    async def rotate_key(self, account_id: UUID, api_key: str | None = None) -> str:
        key = api_key or new_api_key()
        async with UnitOfWork(self.db) as uow:
            await uow.repo.set_api_key_hash(account_id, hash_api_key(key), self.clock.now())
            await uow.commit()
        self._known.clear()
        return key

    async def update(self, account_id: UUID, *, limits: RiskLimits | None = None,
                     allow_short: bool | None = None, rate_limit_per_minute: int | None = None,
                     cash: Decimal | None = None) -> Account:
        async with UnitOfWork(self.db) as uow:
            account = await uow.repo.account(account_id, lock=True)
            if account is None:
                raise DomainError(Violation(
                    Code.NOT_FOUND, "id", f"No account with id {account_id}.",
                    "GET /v1/admin/accounts lists the accounts."))
            account = replace(
                account,
                limits=limits if limits is not None else account.limits,
                allow_short=allow_short if allow_short is not None else account.allow_short,
                rate_limit_per_minute=(rate_limit_per_minute if rate_limit_per_minute is not None
                                       else account.rate_limit_per_minute),
                cash=cash if cash is not None else account.cash,
            )
            await uow.repo.update_account(account, self.clock.now())
            await uow.commit()
        self._known.clear()
        return account
