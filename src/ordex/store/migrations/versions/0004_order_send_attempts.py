"""sending: attempts, next attempt, acknowledgement of failed orders

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 04:45:00.000000
"""

from alembic import op
import sqlalchemy as sa
import ordex.store.types


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('send_attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('next_attempt_at', ordex.store.types.UTCDateTime(length=32), nullable=True))
        batch_op.add_column(sa.Column('acknowledged_at', ordex.store.types.UTCDateTime(length=32), nullable=True))
        batch_op.create_index('ix_orders_routing', ['status', 'routed_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_routing')
        batch_op.drop_column('acknowledged_at')
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('send_attempts')
