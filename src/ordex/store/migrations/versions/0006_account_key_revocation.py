"""accounts: key version (bumped by every rotation or revocation) and revocation time

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 10:45:00.000000
"""

from alembic import op
import sqlalchemy as sa
import ordex.store.types


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_version', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('key_revoked_at', ordex.store.types.UTCDateTime(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('key_revoked_at')
        batch_op.drop_column('key_version')
