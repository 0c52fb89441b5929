"""execution limits on orders: max slippage and timeout

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 04:30:00.000000
"""

from alembic import op
import sqlalchemy as sa
import ordex.store.types


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_slippage_pct', ordex.store.types.ExactDecimal(length=64), nullable=True))
        batch_op.add_column(sa.Column('slippage_price', ordex.store.types.ExactDecimal(length=64), nullable=True))
        batch_op.add_column(sa.Column('timeout_seconds', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('expires_at', ordex.store.types.UTCDateTime(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
        batch_op.drop_column('timeout_seconds')
        batch_op.drop_column('slippage_price')
        batch_op.drop_column('max_slippage_pct')
