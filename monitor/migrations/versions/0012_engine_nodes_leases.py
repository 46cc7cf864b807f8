"""engine nodes, shard leases, a flip sequence per monitor, the node that took each agent batch (several engine
nodes on one PostgreSQL)

Revision ID: 0012
Revises: 0011
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('engine_nodes',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_engine_nodes'))
    )
    op.create_table('shard_leases',
    sa.Column('shard', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('node', sa.String(length=100), nullable=True),
    sa.Column('generation', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acquired_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('shard', name=op.f('pk_shard_leases'))
    )
    with op.batch_alter_table('monitor_states', schema=None) as batch_op:
        batch_op.add_column(sa.Column('flip_seq', sa.BigInteger(), nullable=False, server_default='0'))
    with op.batch_alter_table('agent_batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('node', sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('agent_batches', schema=None) as batch_op:
        batch_op.drop_column('node')
    with op.batch_alter_table('monitor_states', schema=None) as batch_op:
        batch_op.drop_column('flip_seq')
    op.drop_table('shard_leases')
    op.drop_table('engine_nodes')
