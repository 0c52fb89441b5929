"""Venues with only the core order flow: the fill booked from an order status answer's CumQty and
AvgPx, and the words a failed logon is explained in."""

from __future__ import annotations

from decimal import Decimal

import pytest
from msgspec.structs import replace

from ordex.domain.fills import cumulative_covered
from ordex.domain.orders import Filled, OrderStatus, OrderType, Side, apply
from ordex.domain.reconcile import from_cumulative
from ordex.venues.base import Capabilities, Capability, VenueOrder, VenueOrderState
from ordex.venues.fix import logon
from tests.unit.factories import T0, order

CTX = logon.LogonContext("10.0.0.5:9878", "DESK7", "XCHG", "data/fix-store/x.seqnums")


def venue_view(client_order_id: str, filled: str, avg: str, quantity: str = "10",
               state: VenueOrderState = VenueOrderState.OPEN) -> VenueOrder:
    return VenueOrder(venue="CORE", client_order_id=client_order_id, venue_order_id="o1",
                      symbol="AAPL", side=Side.BUY, type=OrderType.LIMIT,
                      quantity=Decimal(quantity), filled_quantity=Decimal(filled),
                      average_price=Decimal(avg), state=state, limit_price=Decimal("100"))


@pytest.mark.parametrize(("booked", "booked_avg", "venue_filled", "venue_avg"), [
    ("0", None, "10", "100.237"),
    ("4", "100.10", "10", "100.262"),
    ("3", "99.99", "7", "100.0133333333"),
])
def test_the_cumulative_fill_brings_ordex_to_the_venues_quantity_and_average(
        booked: str, booked_avg: str | None, venue_filled: str, venue_avg: str) -> None:
    mine = replace(order(filled=booked), average_price=Decimal(booked_avg) if booked_avg else None,
                   status=OrderStatus.PARTIALLY_FILLED if booked != "0" else OrderStatus.ACCEPTED)
    found = venue_view(str(mine.id), venue_filled, venue_avg)
    fill = from_cumulative(mine, found, T0)
    assert fill.last_quantity == Decimal(venue_filled) - Decimal(booked)
    assert fill.cum_quantity == Decimal(venue_filled)
    after = apply(mine, Filled(at=T0, quantity=fill.last_quantity, price=fill.last_price))
    assert after.filled_quantity == Decimal(venue_filled)
    assert after.average_price is not None
    assert abs(after.average_price - Decimal(venue_avg)) < Decimal("0.0001")
    # Made again from the same answer, it has the same exec id: booked once.
    assert from_cumulative(mine, found, T0).exec_id == fill.exec_id
    assert fill.exec_id == f"recovered-cum-{mine.id}-{Decimal(venue_filled).normalize()}"


def test_a_later_cumulative_fill_has_another_exec_id() -> None:
    mine = order()
    first = from_cumulative(mine, venue_view(str(mine.id), "4", "100"), T0)
    second = from_cumulative(replace(mine, filled_quantity=Decimal(4),
                                     average_price=Decimal(100)),
                             venue_view(str(mine.id), "10", "100.5"), T0)
    assert first.exec_id != second.exec_id and second.last_quantity == 6


def test_cumulative_fills_cover_the_highest_cumqty_they_name_and_nothing_else() -> None:
    """What a late report is checked against: only fills booked from CumQty/AvgPx cover a
    CumQty; fills booked by the venue's own exec ids never do (they may come out of order)."""
    mine = order()
    ids = [from_cumulative(mine, venue_view(str(mine.id), q, "100"), T0).exec_id
           for q in ("4", "10")]
    assert cumulative_covered(str(mine.id), ids) == 10  # "1E+1" in the exec id
    assert cumulative_covered(str(mine.id), ["SIM-e7", "SIM-e9"]) == 0
    assert cumulative_covered(str(mine.id), [f"recovered-cum-{order().id}-4"]) == 0
    assert cumulative_covered(str(mine.id), [f"recovered-cum-{mine.id}-x"]) == 0


def test_capabilities_count_as_missing_until_learnt_and_say_how() -> None:
    caps = Capabilities("CORE")
    assert not caps.supports(Capability.MASS_STATUS)
    assert caps.unknown() == list(Capability)
    caps.learn(Capability.MASS_STATUS, False, "35=j BusinessMessageReject: unsupported")
    caps.learn(Capability.TRADE_CAPTURE, True, "answered")
    state = caps.as_json()["mass_status"]
    assert state["supported"] is False and "35=j" in str(state["how"])
    assert caps.supports(Capability.TRADE_CAPTURE)
    assert Capabilities("SIM", dict.fromkeys(Capability, "built in")).unknown() == []


@pytest.mark.parametrize(("text", "kind", "in_hint"), [
    ("MsgSeqNum too low, expecting 83 but received 1", "seq_too_low", "--venue-reset-seq"),
    ("Logon refused: wrong Password (554)", "credentials", "EXCHANGE_API_KEY"),
    ("Invalid username or password", "credentials", "ORDEX_VENUE_USERNAME"),
    ("Unknown SenderCompID DESK7", "comp_id", "--venue-sender-comp-id"),
    ("Market closed", "refused", "DESK7 to XCHG"),
])
def test_a_refused_logon_names_the_cause_and_the_fix(text: str, kind: str, in_hint: str) -> None:
    problem = logon.refused(text, CTX)
    assert problem.kind == kind and text in problem.problem and in_hint in problem.hint


def test_a_silent_drop_and_no_answer_are_told_apart() -> None:
    assert logon.dropped(0.01, 10, CTX).kind == "dropped"
    assert "--venue-target-comp-id" in logon.dropped(0.01, 10, CTX).hint
    late = logon.dropped(10.0, 10, CTX)
    assert late.kind == "no_answer" and "within 10 s" in late.problem
    assert "10.0.0.5:9878" in logon.unreachable(CTX).problem
