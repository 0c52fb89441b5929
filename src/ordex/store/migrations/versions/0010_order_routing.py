"""orders: the venue lifecycle (pending, unconfirmed, at_venue, done) stored as ``routing``;
the partial indexes of unconfirmed orders and of deadlines go (recovery and the timers read the
engine's memory)

Each existing order's routing is what ordex derived before from its status and columns: done
once terminal, at_venue once the venue has named it, unconfirmed once an attempt to send it
started, pending before.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 23:30:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

# The terminal statuses when this revision was written.
TERMINAL = "('cancelled', 'expired', 'failed', 'filled', 'rejected')"
ROUTING = (f"CASE WHEN status IN {TERMINAL} THEN 'done' "
           "WHEN venue_order_id IS NOT NULL THEN 'at_venue' "
           "WHEN routed_at IS NOT NULL THEN 'unconfirmed' ELSE 'pending' END")
# The indexes' predicates as revision 0007 made them, to put them back on a downgrade.
OPEN = "status IN ('accepted', 'partially_filled', 'pending_cancel', 'pending_new')"
UNCONFIRMED = "status = 'accepted' AND venue_order_id IS NULL"
DUE = f"expires_at IS NOT NULL AND {OPEN}"


def upgrade() -> None:
    op.drop_index('ix_orders_unconfirmed', table_name='orders')
    op.drop_index('ix_orders_deadline', table_name='orders')
    op.add_column('orders', sa.Column('routing', sa.String(length=12), nullable=True))
    op.execute(f"UPDATE orders SET routing = {ROUTING}")
    with op.batch_alter_table('orders') as batch_op:
        batch_op.alter_column('routing', existing_type=sa.String(length=12), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('orders') as batch_op:
        batch_op.drop_column('routing')
    for name, columns, where in (('ix_orders_unconfirmed', ['routed_at'], UNCONFIRMED),
                                 ('ix_orders_deadline', ['expires_at'], DUE)):
        op.create_index(name, 'orders', columns, unique=False,
                        sqlite_where=sa.text(where), postgresql_where=sa.text(where))
