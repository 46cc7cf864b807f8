"""heartbeats: the ping token (SHA-256 only) and the latest pings of each push monitor

Revision ID: 0008_heartbeat
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa


revision = '0008_heartbeat'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('heartbeats',
    sa.Column('monitor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('token_issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_ping_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_signal', sa.String(length=10), nullable=True),
    sa.Column('last_exit_code', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['monitor_id'], ['monitors.id'], name=op.f('fk_heartbeats_monitor_id_monitors'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('monitor_id', name=op.f('pk_heartbeats')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_heartbeats_token_sha256'))
    )


def downgrade() -> None:
    op.drop_table('heartbeats')
