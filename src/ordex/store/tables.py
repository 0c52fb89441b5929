"""The schema. Migrations under ``migrations/`` create exactly these tables."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)

from ordex.domain.orders import OPEN_STATUSES
from ordex.store.types import ExactDecimal, UTCDateTime

# In the SQL of the open-order indexes and of every query for open orders, in this order.
OPEN_STATUS_VALUES = tuple(sorted(s.value for s in OPEN_STATUSES))

metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("api_key_hash", String(64), nullable=False, unique=True),
    Column("key_version", Integer, nullable=False, server_default="1"),
    Column("key_revoked_at", UTCDateTime, nullable=True),
    Column("cash", ExactDecimal, nullable=False),
    Column("allow_short", Boolean, nullable=False, default=False),
    Column("max_position_shares", ExactDecimal, nullable=False),
    Column("max_position_notional", ExactDecimal, nullable=False),
    Column("max_order_notional", ExactDecimal, nullable=False),
    Column("daily_loss_limit", ExactDecimal, nullable=False),
    Column("max_open_orders", Integer, nullable=False),
    Column("rate_limit_per_minute", Integer, nullable=True),
    Column("day_start_equity", ExactDecimal, nullable=True),
    Column("trading_day", Date, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

instruments = Table(
    "instruments",
    metadata,
    Column("symbol", String(16), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("tick_size", ExactDecimal, nullable=False),
    Column("lot_size", ExactDecimal, nullable=False),
    Column("status", String(20), nullable=False),
    Column("reference_price", ExactDecimal, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("trader_id", Uuid, ForeignKey("accounts.id"), nullable=False),
    Column("client_order_id", String(64), nullable=True),
    Column("symbol", String(16), ForeignKey("instruments.symbol"), nullable=False),
    Column("side", String(4), nullable=False),
    Column("type", String(10), nullable=False),
    Column("quantity", ExactDecimal, nullable=False),
    Column("limit_price", ExactDecimal, nullable=True),
    Column("stop_loss", ExactDecimal, nullable=True),
    Column("take_profit", ExactDecimal, nullable=True),
    Column("time_in_force", String(3), nullable=False),
    Column("status", String(20), nullable=False),
    Column("filled_quantity", ExactDecimal, nullable=False),
    Column("average_price", ExactDecimal, nullable=True),
    Column("reserve_price", ExactDecimal, nullable=False),
    Column("reason", Text, nullable=True),
    Column("extra", JSON, nullable=False, default=dict),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("venue", String(40), nullable=True),
    Column("venue_order_id", String(80), nullable=True),
    Column("routed_at", UTCDateTime, nullable=True),
    Column("cancel_sent_at", UTCDateTime, nullable=True),
    Column("max_slippage_pct", ExactDecimal, nullable=True),
    Column("slippage_price", ExactDecimal, nullable=True),
    Column("timeout_seconds", Integer, nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("send_attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("acknowledged_at", UTCDateTime, nullable=True),
    # pending, unconfirmed, at_venue, done (domain.orders.Routing)
    Column("routing", String(12), nullable=False),
    UniqueConstraint("trader_id", "client_order_id", name="uq_orders_trader_client_order_id"),
    Index("ix_orders_trader_created", "trader_id", "created_at"),
    Index("ix_orders_trader_id", "trader_id", "id"),
    Index("ix_orders_trader_status", "trader_id", "status", "id"),
    Index("ix_orders_status", "status", "id"),
)

# A partial index of the open orders, a few among all those ever placed: reading them (the
# engine's memory at start, a trader's open orders) stays as cheap at a million stored orders as
# at ten, whatever the planner's statistics say. A query uses it only if its WHERE clause repeats
# the index's predicate (the repository's OPEN_ORDER and ``status = '<value>'`` terms, written
# into the SQL).
_open_order = orders.c.status.in_(OPEN_STATUS_VALUES)
Index("ix_orders_open", orders.c.status, orders.c.routed_at, orders.c.id,
      sqlite_where=_open_order, postgresql_where=_open_order)

fills = Table(
    "fills",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("order_id", Uuid, ForeignKey("orders.id"), nullable=False),
    Column("trader_id", Uuid, ForeignKey("accounts.id"), nullable=False),
    Column("symbol", String(16), nullable=False),
    Column("side", String(4), nullable=False),
    Column("timestamp", UTCDateTime, nullable=False),
    Column("quantity", ExactDecimal, nullable=False),
    Column("price", ExactDecimal, nullable=False),
    Column("venue", String(40), nullable=False),
    Column("commission", ExactDecimal, nullable=False),
    Column("exec_id", String(80), nullable=False),
    UniqueConstraint("venue", "exec_id", name="uq_fills_venue_exec_id"),
    Index("ix_fills_order", "order_id"),
    Index("ix_fills_trader_id", "trader_id", "id"),
    Index("ix_fills_trader_time", "trader_id", "timestamp"),
)

positions = Table(
    "positions",
    metadata,
    Column("account_id", Uuid, ForeignKey("accounts.id"), primary_key=True),
    Column("symbol", String(16), ForeignKey("instruments.symbol"), primary_key=True),
    Column("quantity", ExactDecimal, nullable=False),
    Column("average_cost", ExactDecimal, nullable=False),
    Column("realized_pnl", ExactDecimal, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# The journal: one append-only row per action, numbered by the execution core's one writer.
# ``seq`` is the row's place in the journal; rows the stream shows also have ``stream_seq``
# (service-wide) and ``trader_seq`` (among the trader's own), both without holes.
_seq = BigInteger().with_variant(Integer, "sqlite")
journal = Table(
    "journal",
    metadata,
    Column("seq", _seq, primary_key=True, autoincrement=False),
    Column("stream_seq", _seq, nullable=True),
    Column("trader_seq", _seq, nullable=True),
    Column("order_id", Uuid, nullable=True),
    Column("trader_id", Uuid, nullable=False),
    Column("actor", String(20), nullable=False),
    Column("action", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("timestamp", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=True),
    Column("symbol", String(16), nullable=True),
    Column("quantity", ExactDecimal, nullable=True),
    Column("price", ExactDecimal, nullable=True),
    Column("venue", String(40), nullable=True),
    Column("event", String(30), nullable=True),
    Column("details", JSON, nullable=False),
    Column("payload", JSON(none_as_null=True), nullable=True),
    UniqueConstraint("stream_seq", name="uq_journal_stream_seq"),
    UniqueConstraint("trader_id", "trader_seq", name="uq_journal_trader_seq"),
    Index("ix_journal_order_seq", "order_id", "seq"),
    Index("ix_journal_trader_seq", "trader_id", "seq"),
    Index("ix_journal_timestamp", "timestamp"),
)

# The outcome of each command sent with a client's own idempotency key (as its message's JSON),
# written in the command's transaction; ``fingerprint`` is the SHA-256 of the command's bytes.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("actor", Uuid, primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("outcome", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_idempotency_keys_created_at", "created_at"),
)
