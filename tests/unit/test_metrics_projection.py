"""The Measurement Plan's metrics lines, read off journal rows (and written by their thread)."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path

from msgspec.structs import replace

from ordex.domain.journal import Actor, LogAction, entry
from ordex.domain.orders import OrderStatus
from ordex.domain.status import payload
from ordex.metrics import (
    CANCELLED_BY_TRADER,
    EXECUTED,
    FAILED,
    FILLED,
    SUBMITTED,
    MetricsLog,
    projected,
)
from tests.unit.factories import T0
from tests.unit.factories import order as make_order


def test_each_counted_action_becomes_its_metric_and_the_rest_none() -> None:
    placed = make_order()
    sent = replace(placed, send_attempts=2, venue="SIM")
    filled = replace(sent, status=OrderStatus.FILLED, filled_quantity=placed.quantity)
    cancelled = replace(sent, status=OrderStatus.CANCELLED)
    rows = [
        entry(placed, LogAction.SUBMIT, T0, Actor.TRADER, details={"retry_of": "x"}),
        replace(entry(placed, LogAction.APPROVE, T0, Actor.ENGINE), event="accepted",
                payload=payload(placed)),
        entry(sent, LogAction.EXECUTE, T0, Actor.ENGINE, details={"attempt": 2}),
        replace(entry(filled, LogAction.FILL, T0, Actor.VENUE, quantity=Decimal(3)),
                event="filled", payload=payload(filled)),
        replace(entry(cancelled, LogAction.CANCEL, T0, Actor.TRADER), event="cancelled",
                payload=payload(cancelled)),
        replace(entry(cancelled, LogAction.CANCEL, T0, Actor.ENGINE), event="cancelled",
                payload=payload(cancelled)),
        entry(placed, LogAction.FAIL, T0, Actor.ENGINE, reason="unreachable"),
        entry(placed, LogAction.EXPIRE, T0, Actor.ENGINE, reason="never sent"),
        entry(placed, LogAction.EXPIRE, T0, Actor.VENUE, reason="day over"),
    ]
    got = [(name, fields) for name, _, fields in projected(rows)]
    assert [name for name, _ in got] == [SUBMITTED, EXECUTED, FILLED, CANCELLED_BY_TRADER,
                                         FAILED, FAILED]
    assert got[0][1]["retry_of"] == "x" and got[0][1]["quantity"] == str(placed.quantity)
    assert got[1][1] == {"venue": "SIM", "retry_count": 1}
    assert got[2][1] == {"venue": "SIM", "retry_count": 1}
    assert got[3][1]["status"] == "cancelled"
    assert got[5][1] == {"reason": "never sent", "status": "expired"}


def test_a_commit_is_handed_over_once_and_written_line_by_line(tmp_path: Path) -> None:
    placed = make_order()
    metrics = MetricsLog(tmp_path / "orders.jsonl")
    metrics.start()
    metrics.record([entry(placed, LogAction.SUBMIT, T0, Actor.TRADER),
                    entry(placed, LogAction.RETRY, T0, Actor.ENGINE)])
    metrics.record([entry(placed, LogAction.RETRY, T0, Actor.ENGINE)])  # nothing counted
    metrics.emit("order.ghost", T0, order_id="G1", venue="SIM")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (tmp_path / "orders.jsonl").read_text().count("\n") < 2:
        time.sleep(0.01)
    metrics.stop()
    lines = [json.loads(line) for line in (tmp_path / "orders.jsonl").read_text().splitlines()]
    assert [(m["event"], m["order_id"]) for m in lines] == [
        (SUBMITTED, str(placed.id)), ("order.ghost", "G1")]


def test_stop_writes_what_is_still_queued(tmp_path: Path) -> None:
    placed = make_order()
    metrics = MetricsLog(tmp_path / "orders.jsonl")
    metrics.start()
    for _ in range(50):
        metrics.record([entry(placed, LogAction.SUBMIT, T0, Actor.TRADER)])
    metrics.stop()  # before the writer's next turn: the queue is written, not dropped
    lines = (tmp_path / "orders.jsonl").read_text().splitlines()
    assert len(lines) == 50 and all(json.loads(line)["event"] == SUBMITTED for line in lines)
