"""The messages between the API and the engine: commands (what a trader asks) and their
outcomes (the order as it stands once the command is committed, or why it was refused), and
their bytes.

Every command carries an idempotency key. The bytes are JSON made by msgspec: typed decoding
straight into these classes (a Decimal stays the exact string it was, a time keeps its zone
and microseconds), readable where a message queue shows them, and fast enough for the hot path.
A decoder ignores fields it does not know, so that an API and an engine of neighbouring
versions can still talk while one of them is being upgraded.
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import msgspec

from ordex.domain.accounts import Account
from ordex.domain.commands import SubmitOrder
from ordex.domain.errors import Code, Violation
from ordex.domain.orders import Order


class Command(msgspec.Struct, frozen=True, gc=False, tag_field="command"):
    """``idempotency_key`` names the request: the same key sent again by the same actor gets
    the same outcome without the work being done twice. ``client_key`` says the trader chose
    the key (HTTP ``Idempotency-Key``): then the outcome is kept for repeats. A key ordex
    derived names one request only; a repeated request is answered by the command's own
    idempotency (a ``client_order_id`` already used, an order already cancelled)."""

    idempotency_key: str
    client_key: bool

    @property
    def actor(self) -> UUID:
        raise NotImplementedError


class Submit(Command, frozen=True, tag="submit"):
    order: SubmitOrder

    @property
    def actor(self) -> UUID:
        return self.order.trader_id


class Cancel(Command, frozen=True, tag="cancel"):
    trader_id: UUID
    order_id: UUID

    @property
    def actor(self) -> UUID:
        return self.trader_id


class Retry(Command, frozen=True, tag="retry"):
    """Send a failed order again as a new order with the same terms."""

    trader_id: UUID
    order_id: UUID

    @property
    def actor(self) -> UUID:
        return self.trader_id


class Acknowledge(Command, frozen=True, tag="acknowledge"):
    """The trader has seen a failed order: close it for good."""

    trader_id: UUID
    order_id: UUID

    @property
    def actor(self) -> UUID:
        return self.trader_id


class LimitsChange(msgspec.Struct, frozen=True, gc=False):
    """The risk limits to set; one left as None keeps the account's value."""

    max_position_shares: Decimal | None = None
    max_position_notional: Decimal | None = None
    max_order_notional: Decimal | None = None
    daily_loss_limit: Decimal | None = None
    max_open_orders: int | None = None

    def given(self) -> dict[str, Decimal | int]:
        return {name: value for name in self.__struct_fields__
                if (value := getattr(self, name)) is not None}


class UpdateAccount(Command, frozen=True, tag="update_account"):
    """An administrator (``admin_id``) sets a trader's limits, shorting, rate limit or cash;
    what is left as None keeps the account's value, as it is when the change is applied."""

    admin_id: UUID
    account_id: UUID
    limits: LimitsChange | None = None
    allow_short: bool | None = None
    rate_limit_per_minute: int | None = None
    cash: Decimal | None = None

    @property
    def actor(self) -> UUID:
        return self.admin_id


AnyCommand = Submit | Cancel | Retry | Acknowledge | UpdateAccount


class Outcome(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag_field="outcome"):
    """``replay`` marks an outcome given again for a repeated idempotency key."""

    replay: bool = False


class OrderDone(Outcome, frozen=True, tag="order"):
    """The order once the command is committed; ``created`` when the command made it (a
    submit or a retry that was not a replay)."""

    order: Order
    created: bool = False


class AccountDone(Outcome, frozen=True, tag="account"):
    account: Account


class Refused(Outcome, frozen=True, tag="refused"):
    """Why the command was not carried out: every violation, each with its stable code, a
    message for the trader and a hint."""

    violations: tuple[Violation, ...]

    @property
    def code(self) -> Code:
        return self.violations[0].code

    @property
    def message(self) -> str:
        return "; ".join(v.message for v in self.violations)


AnyOutcome = OrderDone | AccountDone | Refused

_encoder = msgspec.json.Encoder(decimal_format="string")
_commands = msgspec.json.Decoder(AnyCommand)
_outcomes = msgspec.json.Decoder(AnyOutcome)


def encode(message: Command | Outcome) -> bytes:
    return _encoder.encode(message)


def decode_command(data: bytes) -> AnyCommand:
    """The command ``data`` holds; ``msgspec.ValidationError`` if it is not one."""
    return _commands.decode(data)


def decode_outcome(data: bytes) -> AnyOutcome:
    return _outcomes.decode(data)


def key_reused(key: str) -> Refused:
    return Refused(violations=(Violation(
        Code.IDEMPOTENCY_KEY_REUSED, "Idempotency-Key",
        f"The Idempotency-Key '{key[:64]}' was already used for a different request.",
        "Use a new key for a new request; send the original request unchanged with the "
        "same key to get its answer again."),))
