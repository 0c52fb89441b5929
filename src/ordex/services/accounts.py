"""Account administration: create accounts, issue, rotate and revoke keys, set risk limits,
authenticate."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from msgspec.structs import replace

from ordex.clock import Clock
from ordex.domain.accounts import Account, RiskLimits, Role
from ordex.domain.errors import Code, DomainError, Violation
from ordex.domain.positions import Position
from ordex.engine.core import Core
from ordex.engine.tx import Tx
from ordex.ids import hash_api_key, new_api_key, new_id
from ordex.store.database import Database
from ordex.store.uow import UnitOfWork, reading

log = logging.getLogger(__name__)

KEY_CHECK_SECONDS = 0.25
AUTH_TTL_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class IssuedKey:
    account: Account
    api_key: str


class AccountService:
    """Accounts and keys.

    Authentication results are cached for ``auth_ttl`` seconds, so that a trader's requests do
    not read the store. A key rotated or revoked in this process, and an account changed here,
    are forgotten at once; a key changed by another process (the CLI, another server on the
    same store) is noticed by ``watch()``, which checks the store every ``KEY_CHECK_SECONDS``
    for a change of any account's key version, forgets the cache and wakes the open sessions
    (streams, long polls) of the accounts whose key changed. The ttl bounds only how long an
    account's other columns, changed in the store by another process, may be seen as they were.
    """

    def __init__(self, db: Database, clock: Clock, core: Core | None = None,
                 auth_ttl: float = AUTH_TTL_SECONDS) -> None:
        """With ``core`` (the running service), changes to what trading reads (cash, limits)
        go through the execution core, which owns that state; without it (the CLI, nothing
        else running) straight to the store."""
        self.db = db
        self.clock = clock
        self.core = core
        self.auth_ttl = auth_ttl
        self._known: dict[str, tuple[float, Account]] = {}
        self._versions: dict[UUID, int] = {}
        self._sessions: dict[UUID, dict[asyncio.Event, int]] = {}
        self._watcher: asyncio.Task[None] | None = None

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

    @contextlib.contextmanager
    def session(self, account: Account) -> Iterator[asyncio.Event]:
        """An event set as soon as the key ``account`` authenticated with is rotated or revoked
        (at once if that has happened already)."""
        ended = asyncio.Event()
        if self._versions.get(account.id, account.key_version) > account.key_version:
            ended.set()
        self._sessions.setdefault(account.id, {})[ended] = account.key_version
        try:
            yield ended
        finally:
            waiting = self._sessions.get(account.id)
            if waiting is not None:
                waiting.pop(ended, None)
                if not waiting:
                    del self._sessions[account.id]

    def start(self) -> None:
        if self._watcher is None:
            self._watcher = asyncio.create_task(self.watch(), name="key-watcher")

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None

    async def watch(self, interval: float = KEY_CHECK_SECONDS) -> None:
        """Notice keys changed by other processes (see the class's docstring)."""
        seen: tuple[int, int] | None = None
        while True:
            try:
                async with reading(self.db) as repo:
                    total = await repo.key_versions_total()
                    versions = await repo.key_versions() if total != seen else None
                if versions is not None:
                    seen = total
                    self._key_versions_are(versions)
            except Exception as exc:  # the store is away; the cache's ttl bounds staleness
                log.warning("could not check the store for revoked keys: %s", exc)
            await asyncio.sleep(interval)

    def _key_versions_are(self, versions: dict[UUID, int]) -> None:
        self._known.clear()
        self._versions.update(versions)
        for account_id, version in versions.items():
            for ended, authenticated_at in self._sessions.get(account_id, {}).items():
                if version > authenticated_at:
                    ended.set()

    async def find(self, ref: str) -> Account:
        """The account named ``ref``, or with id ``ref``."""
        try:
            account_id: UUID | None = UUID(ref)
        except ValueError:
            account_id = None
        async with reading(self.db) as repo:
            account = (await repo.account(account_id) if account_id is not None
                       else await repo.account_by_name(ref))
        if account is None:
            raise _not_found(ref)
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
        """Issue a new key for the account; its old key stops working everywhere."""
        return (await self.issue_key(account_id, api_key)).api_key

    async def issue_key(self, account_id: UUID, api_key: str | None = None) -> IssuedKey:
        key = api_key or new_api_key()
        async with UnitOfWork(self.db) as uow:
            if await uow.repo.account(account_id, lock=True) is None:
                raise _not_found(str(account_id))
            await uow.repo.set_api_key_hash(account_id, hash_api_key(key), self.clock.now())
            account = await uow.repo.account(account_id)
            await uow.commit()
        assert account is not None
        self._key_versions_are({account.id: account.key_version})
        return IssuedKey(account, key)

    async def revoke_key(self, account_id: UUID) -> Account:
        """Stop the account's key from working, everywhere; revoking twice changes nothing."""
        async with UnitOfWork(self.db) as uow:
            if await uow.repo.account(account_id, lock=True) is None:
                raise _not_found(str(account_id))
            await uow.repo.revoke_api_key(account_id, self.clock.now())
            account = await uow.repo.account(account_id)
            await uow.commit()
        assert account is not None
        self._key_versions_are({account.id: account.key_version})
        return account

    async def update(self, account_id: UUID, *,
                     limit_changes: Mapping[str, Decimal | int] | None = None,
                     allow_short: bool | None = None, rate_limit_per_minute: int | None = None,
                     cash: Decimal | None = None,
                     keep: Callable[[Tx, Account], None] | None = None) -> Account:
        """Set what is given (``limit_changes``: risk limits by name) on the account as it
        stands when the change is applied; the rest stays. ``keep`` is called in the change's
        unit of work with the account as changed (it needs the execution core)."""
        def changed(account: Account) -> Account:
            return replace(
                account,
                limits=replace(account.limits, **limit_changes) if limit_changes
                else account.limits,
                allow_short=allow_short if allow_short is not None else account.allow_short,
                rate_limit_per_minute=(rate_limit_per_minute if rate_limit_per_minute is not None
                                       else account.rate_limit_per_minute),
                cash=cash if cash is not None else account.cash,
            )

        if self.core is not None:
            async def unit(tx: Tx) -> None:
                account = await tx.account(account_id)
                if account is None:
                    raise _not_found(str(account_id))
                updated = changed(account)
                tx.set_account(updated, self.clock.now())
                if keep is not None:
                    keep(tx, updated)
            await self.core.run(unit)
            async with reading(self.db) as repo:
                updated = await repo.account(account_id)
        else:
            assert keep is None, "a kept outcome is written by the execution core"
            async with UnitOfWork(self.db) as uow:
                account = await uow.repo.account(account_id, lock=True)
                if account is None:
                    raise _not_found(str(account_id))
                updated = changed(account)
                await uow.repo.update_account(updated, self.clock.now())
                await uow.commit()
        assert updated is not None
        self._known.clear()
        return updated


def _not_found(ref: str) -> DomainError:
    return DomainError(Violation(
        Code.NOT_FOUND, "id", f"No account named or with id '{ref}'.",
        "GET /v1/admin/accounts (or `ordex accounts list`) lists the accounts."))
