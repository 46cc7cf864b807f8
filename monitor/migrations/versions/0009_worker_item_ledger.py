"""worker item ledger: attempts and errors of items whose own rows have no place for them

Revision ID: 0009
Revises: 0008_heartbeat
"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008_heartbeat'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'worker_item_failures',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('worker', sa.String(length=40), nullable=False),
        sa.Column('item', sa.String(length=200), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('error', sa.Text(), nullable=False),
        sa.Column('first_failed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_failed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('gave_up_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_worker_item_failures')),
        sa.UniqueConstraint('worker', 'item', name=op.f('uq_worker_item_failures_worker')),
    )


def downgrade() -> None:
    op.drop_table('worker_item_failures')
