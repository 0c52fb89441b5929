"""journal: the execution log and the status events become one append-only table

Every row of both is kept, in time order. Stream positions do not move: an event keeps its
service-wide number (as ``stream_seq``) and the trader's own (``trader_seq``), so a client that
resumes after a position it was shown before the upgrade misses nothing and sees nothing twice.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 20:00:00.000000
"""

from alembic import op
import sqlalchemy as sa

from ordex.store.types import ExactDecimal, UTCDateTime


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')

# Who made a change, as far as the old rows tell.
LOG_ACTOR = ("CASE WHEN l.action IN ('submit', 'acknowledge') THEN 'trader' "
             "WHEN l.action = 'cancel' AND l.reason = 'requested by trader' THEN 'trader' "
             "WHEN l.action = 'fill' THEN 'venue' WHEN l.action = 'recover' THEN 'recovery' "
             "ELSE 'engine' END")
EVENT_ACTION = ("CASE e.type WHEN 'accepted' THEN 'approve' WHEN 'venue_ack' THEN 'ack' "
                "WHEN 'acknowledged' THEN 'acknowledge' WHEN 'partially_filled' THEN 'fill' "
                "WHEN 'filled' THEN 'fill' WHEN 'pending_cancel' THEN 'cancel' "
                "WHEN 'cancelled' THEN 'cancel' WHEN 'rejected' THEN 'reject' "
                "WHEN 'expired' THEN 'expire' WHEN 'failed' THEN 'fail' ELSE 'execute' END")
EVENT_ACTOR = ("CASE WHEN e.type IN ('venue_ack', 'partially_filled', 'filled') THEN 'venue' "
               "WHEN e.type = 'acknowledged' THEN 'trader' ELSE 'engine' END")


def _detail(name: str) -> str:
    if op.get_bind().dialect.name == 'postgresql':
        return f"(l.details ->> '{name}')"
    return f"json_extract(l.details, '$.{name}')"


def upgrade() -> None:
    op.create_table(
        'journal',
        sa.Column('seq', SEQ, primary_key=True, autoincrement=False),
        sa.Column('stream_seq', SEQ, nullable=True),
        sa.Column('trader_seq', SEQ, nullable=True),
        sa.Column('order_id', sa.Uuid(), nullable=True),
        sa.Column('trader_id', sa.Uuid(), nullable=False),
        sa.Column('actor', sa.String(length=20), nullable=False),
        sa.Column('action', sa.String(length=20), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('timestamp', UTCDateTime(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('symbol', sa.String(length=16), nullable=True),
        sa.Column('quantity', ExactDecimal(), nullable=True),
        sa.Column('price', ExactDecimal(), nullable=True),
        sa.Column('venue', sa.String(length=40), nullable=True),
        sa.Column('event', sa.String(length=30), nullable=True),
        sa.Column('details', sa.JSON(), nullable=False),
        sa.Column('payload', sa.JSON(none_as_null=True), nullable=True),
        sa.UniqueConstraint('stream_seq', name='uq_journal_stream_seq'),
        sa.UniqueConstraint('trader_id', 'trader_seq', name='uq_journal_trader_seq'),
    )
    numeric = 'NUMERIC' if op.get_bind().dialect.name == 'postgresql' else 'TEXT'
    # Both tables' rows in time order; at one instant, events (in their own order) before log
    # rows (in the order of their ids).
    op.execute(f"""
        INSERT INTO journal (seq, stream_seq, trader_seq, order_id, trader_id, actor, action,
                             status, timestamp, reason, symbol, quantity, price, venue, event,
                             details, payload)
        SELECT row_number() OVER (ORDER BY timestamp, kind, stream_seq, log_id),
               stream_seq, trader_seq, order_id, trader_id, actor, action, status, timestamp,
               reason, symbol, quantity, price, venue, event, details, payload
        FROM (
            SELECT 0 AS kind, e.seq AS stream_seq, e.trader_seq, NULL AS log_id, e.order_id,
                   e.trader_id, {EVENT_ACTOR} AS actor, {EVENT_ACTION} AS action, e.status,
                   e.timestamp, NULL AS reason, o.symbol, o.quantity, o.limit_price AS price,
                   o.venue, e.type AS event, '{{}}' AS details, e.payload
            FROM order_events e LEFT JOIN orders o ON o.id = e.order_id
            UNION ALL
            SELECT 1, NULL, NULL, l.id, l.order_id, l.trader_id, {LOG_ACTOR}, l.action,
                   l.status, l.timestamp, l.reason,
                   COALESCE({_detail('symbol')}, o.symbol),
                   COALESCE(CAST({_detail('quantity')} AS {numeric}), o.quantity),
                   CASE WHEN {_detail('price')} IN ('None', '') THEN o.limit_price
                        ELSE COALESCE(CAST({_detail('price')} AS {numeric}), o.limit_price) END,
                   COALESCE({_detail('venue')}, o.venue), NULL, l.details, NULL
            FROM execution_logs l LEFT JOIN orders o ON o.id = l.order_id
        ) AS merged
    """)
    op.create_index('ix_journal_order_seq', 'journal', ['order_id', 'seq'], unique=False)
    op.create_index('ix_journal_trader_seq', 'journal', ['trader_id', 'seq'], unique=False)
    op.create_index('ix_journal_timestamp', 'journal', ['timestamp'], unique=False)
    op.drop_table('order_events')
    op.drop_table('execution_logs')


def downgrade() -> None:
    raise NotImplementedError("the journal cannot be split back into two tables")
