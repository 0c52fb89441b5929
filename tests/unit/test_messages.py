"""Commands and outcomes as bytes: what goes in comes out, equal and byte for byte the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ordex.domain.accounts import Account, RiskLimits, Role
from ordex.domain.commands import SubmitOrder
from ordex.domain.errors import Code, Violation
from ordex.domain.orders import Order, OrderStatus, OrderType, Routing, Side, TimeInForce
from ordex.services.messages import (
    AccountDone,
    Acknowledge,
    Cancel,
    LimitsChange,
    OrderDone,
    Refused,
    Retry,
    Submit,
    UpdateAccount,
    decode_command,
    decode_outcome,
    encode,
)
from tests.unit.factories import T0, TRADER, submit
from tests.unit.factories import order as make_order

texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
keys = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=255)
amounts = st.decimals(allow_nan=False, allow_infinity=False)
maybe_amounts = st.none() | amounts
times = st.builds(
    lambda at, minutes: at.replace(tzinfo=timezone(timedelta(minutes=minutes))),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(-23 * 60 - 59, 23 * 60 + 59))
maybe_times = st.none() | times
ids = st.uuids()

submit_orders = st.builds(
    SubmitOrder, trader_id=ids, symbol=texts, side=st.sampled_from(Side),
    type=st.sampled_from(OrderType), quantity=amounts,
    time_in_force=st.sampled_from(TimeInForce), limit_price=maybe_amounts,
    stop_loss=maybe_amounts, take_profit=maybe_amounts, client_order_id=st.none() | texts,
    max_slippage_pct=maybe_amounts, timeout_seconds=st.none() | st.integers(0, 2**31))
limits = st.builds(RiskLimits, amounts, amounts, amounts, amounts, st.integers(0, 10**6))
limit_changes = st.builds(LimitsChange, maybe_amounts, maybe_amounts, maybe_amounts,
                          maybe_amounts, st.none() | st.integers(0, 10**6))
commands = st.one_of(
    st.builds(Submit, keys, st.booleans(), submit_orders),
    *(st.builds(kind, keys, st.booleans(), trader_id=ids, order_id=ids)
      for kind in (Cancel, Retry, Acknowledge)),
    st.builds(UpdateAccount, keys, st.booleans(), admin_id=ids, account_id=ids,
              limits=st.none() | limit_changes, allow_short=st.none() | st.booleans(),
              rate_limit_per_minute=st.none() | st.integers(1, 10**6), cash=maybe_amounts))

orders = st.builds(
    Order, id=ids, trader_id=ids, symbol=texts, side=st.sampled_from(Side),
    type=st.sampled_from(OrderType), quantity=amounts, time_in_force=st.sampled_from(TimeInForce),
    created_at=times, updated_at=times, client_order_id=st.none() | texts,
    limit_price=maybe_amounts, status=st.sampled_from(OrderStatus), filled_quantity=amounts,
    average_price=maybe_amounts, reserve_price=amounts, reason=st.none() | texts,
    extra=st.dictionaries(texts, texts, max_size=3), venue=st.none() | texts,
    routing=st.sampled_from(Routing), routed_at=maybe_times, expires_at=maybe_times,
    send_attempts=st.integers(0, 100), acknowledged_at=maybe_times)
violations = st.builds(Violation, st.sampled_from(Code), st.none() | texts, texts, texts)
accounts = st.builds(
    Account, id=ids, name=texts, role=st.sampled_from(Role), cash=amounts,
    allow_short=st.booleans(), limits=limits, rate_limit_per_minute=st.none() | st.integers(1),
    day_start_equity=maybe_amounts, trading_day=st.none() | st.dates(),
    key_version=st.integers(1, 10**6), key_revoked_at=maybe_times)
outcomes = st.one_of(
    st.builds(OrderDone, order=orders, created=st.booleans(), replay=st.booleans()),
    st.builds(AccountDone, account=accounts, replay=st.booleans()),
    st.builds(Refused, violations=st.lists(violations, min_size=1, max_size=4).map(tuple),
              replay=st.booleans()))


@given(commands)
@settings(max_examples=300, deadline=None)
def test_every_command_survives_its_bytes(command: object) -> None:
    data = encode(command)  # type: ignore[arg-type]
    back = decode_command(data)
    assert back == command and type(back) is type(command)
    assert encode(back) == data


@given(outcomes)
@settings(max_examples=300, deadline=None)
def test_every_outcome_survives_its_bytes(outcome: object) -> None:
    data = encode(outcome)  # type: ignore[arg-type]
    back = decode_outcome(data)
    assert back == outcome and type(back) is type(outcome)
    assert encode(back) == data


def test_amounts_keep_their_digits_and_times_their_zone_and_microseconds() -> None:
    later = T0.astimezone(timezone(timedelta(hours=-5)))
    order = make_order(quantity="10.50", reserve="1E+2")
    done = OrderDone(order=Order(**{**_fields(order), "updated_at": later}), created=True)
    data = encode(done)
    assert b'"quantity":"10.50"' in data and b'"limit_price":"1E+2"' in data
    assert b'"created_at":"2026-01-05T14:30:00.123456Z"' in data
    assert b'"updated_at":"2026-01-05T09:30:00.123456-05:00"' in data
    back = decode_outcome(data)
    assert isinstance(back, OrderDone)
    assert str(back.order.quantity) == "10.50" and back.order.created_at.tzinfo == UTC
    assert back.order.updated_at.utcoffset() == timedelta(hours=-5)


def test_a_submit_names_its_kind_key_and_trader() -> None:
    command = Submit("k-1", True, submit())
    data = msgspec.json.decode(encode(command))
    assert (data["command"], data["idempotency_key"], data["client_key"]) == ("submit", "k-1",
                                                                              True)
    assert data["order"]["trader_id"] == str(TRADER) and command.actor == TRADER


def test_a_decoder_ignores_fields_it_does_not_know() -> None:
    """An engine one version behind still reads what a newer API sends."""
    data = (b'{"command":"cancel","idempotency_key":"k","client_key":false,"trader_id":"'
            + str(TRADER).encode() + b'","order_id":"' + str(UUID(int=7)).encode()
            + b'","reason":"new in the next version"}')
    assert decode_command(data) == Cancel("k", False, trader_id=TRADER, order_id=UUID(int=7))


@pytest.mark.parametrize("data", [
    b'{"command":"amend","idempotency_key":"k","client_key":false}',
    b'{"command":"cancel","idempotency_key":"k","client_key":false,"trader_id":"x",'
    b'"order_id":"00000000-0000-0000-0000-000000000007"}',
    b'{"command":"cancel","client_key":false}',
    b'not json',
])
def test_bytes_that_are_not_a_command_are_refused(data: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_command(data)


def test_a_refusal_gives_its_code_and_message() -> None:
    refused = Refused(violations=(
        Violation(Code.INSUFFICIENT_FUNDS, "quantity", "Not enough cash.", "Buy fewer."),
        Violation(Code.PRICE_OFF_TICK, "limit_price", "Off tick.", "Round it.")))
    assert refused.code is Code.INSUFFICIENT_FUNDS
    assert refused.message == "Not enough cash.; Off tick."


def test_a_limits_change_names_only_what_it_sets() -> None:
    change = LimitsChange(max_order_notional=Decimal("1000"), max_open_orders=5)
    assert change.given() == {"max_order_notional": Decimal("1000"), "max_open_orders": 5}
    assert LimitsChange().given() == {}


def _fields(order: Order) -> dict[str, object]:
    return {name: getattr(order, name) for name in Order.__struct_fields__}
