"""idempotency_keys: the outcome of each command sent with a client's Idempotency-Key, written
in the command's own transaction, so that a repeat after a restart is answered, not done again

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 23:00:00.000000
"""

from alembic import op
import sqlalchemy as sa

from ordex.store.types import UTCDateTime


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'idempotency_keys',
        sa.Column('actor', sa.Uuid(), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('outcome', sa.Text(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('actor', 'key'),
    )
    op.create_index('ix_idempotency_keys_created_at', 'idempotency_keys', ['created_at'])


def downgrade() -> None:
    op.drop_index('ix_idempotency_keys_created_at', table_name='idempotency_keys')
    op.drop_table('idempotency_keys')
