"""order events: each trader's own sequence number

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 11:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('order_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trader_seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
    # Existing events are numbered per trader in their service-wide order.
    op.execute(
        "UPDATE order_events SET trader_seq = numbered.n FROM ("
        "SELECT seq, row_number() OVER (PARTITION BY trader_id ORDER BY seq) AS n "
        "FROM order_events) AS numbered WHERE order_events.seq = numbered.seq")
    with op.batch_alter_table('order_events', schema=None) as batch_op:
        batch_op.alter_column('trader_seq', existing_type=sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False)
        batch_op.create_unique_constraint('uq_order_events_trader_seq', ['trader_id', 'trader_seq'])


def downgrade() -> None:
    with op.batch_alter_table('order_events', schema=None) as batch_op:
        batch_op.drop_constraint('uq_order_events_trader_seq', type_='unique')
        batch_op.drop_column('trader_seq')
