"""orders: partial indexes of the open orders for the engine's polling; listings by trader,
status and fills walk an index newest first

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 15:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# The open statuses when this revision was written, sorted as the queries name them.
OPEN = "status IN ('accepted', 'partially_filled', 'pending_cancel', 'pending_new')"
UNCONFIRMED = "status = 'accepted' AND venue_order_id IS NULL"
DUE = f"expires_at IS NOT NULL AND {OPEN}"


def _partial(name: str, columns: list[str], where: str) -> None:
    op.create_index(name, 'orders', columns, unique=False,
                    sqlite_where=sa.text(where), postgresql_where=sa.text(where))


def upgrade() -> None:
    op.drop_index('ix_orders_routing', table_name='orders')
    op.drop_index('ix_orders_status', table_name='orders')
    op.drop_index('ix_orders_trader_status', table_name='orders')
    op.create_index('ix_orders_status', 'orders', ['status', 'id'], unique=False)
    op.create_index('ix_orders_trader_status', 'orders', ['trader_id', 'status', 'id'],
                    unique=False)
    op.create_index('ix_orders_trader_id', 'orders', ['trader_id', 'id'], unique=False)
    _partial('ix_orders_open', ['status', 'routed_at', 'id'], OPEN)
    _partial('ix_orders_unconfirmed', ['routed_at'], UNCONFIRMED)
    _partial('ix_orders_deadline', ['expires_at'], DUE)
    op.create_index('ix_fills_trader_id', 'fills', ['trader_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_fills_trader_id', table_name='fills')
    for name in ('ix_orders_deadline', 'ix_orders_unconfirmed', 'ix_orders_open',
                 'ix_orders_trader_id', 'ix_orders_trader_status', 'ix_orders_status'):
        op.drop_index(name, table_name='orders')
    op.create_index('ix_orders_trader_status', 'orders', ['trader_id', 'status'], unique=False)
    op.create_index('ix_orders_status', 'orders', ['status'], unique=False)
    op.create_index('ix_orders_routing', 'orders', ['status', 'routed_at'], unique=False)
