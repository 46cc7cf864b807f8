"""locations, agent batches and results per location; a monitor's locations and quorum

Revision ID: 0011
Revises: 0010 (pointed at 0009 while 0010 is being written elsewhere; the lead re-chains at merge)
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('locations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('canaries', sa.JSON(), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=True),
    sa.Column('token_issued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_locations')),
    sa.UniqueConstraint('name', name=op.f('uq_locations_name')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_locations_token_sha256'))
    )
    op.create_table('agent_batches',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('location_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('agent_id', sa.String(length=100), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('results', sa.Integer(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'], name=op.f('fk_agent_batches_location_id_locations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_batches')),
    sa.UniqueConstraint('location_id', 'agent_id', 'seq', name=op.f('uq_agent_batches_location_id'))
    )
    op.create_table('location_results',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('location', sa.String(length=100), nullable=False),
    sa.Column('monitor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=10), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('latency_s', sa.Float(), nullable=False),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.Column('batch_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['agent_batches.id'], name=op.f('fk_location_results_batch_id_agent_batches'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['monitor_id'], ['monitors.id'], name=op.f('fk_location_results_monitor_id_monitors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_location_results'))
    )
    with op.batch_alter_table('location_results', schema=None) as batch_op:
        batch_op.create_index('ix_location_results_location_at', ['location', 'at'], unique=False)
        batch_op.create_index('ix_location_results_monitor_at', ['monitor_id', 'at'], unique=False)

    with op.batch_alter_table('monitors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locations', sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column('quorum', sa.Integer(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('monitors', schema=None) as batch_op:
        batch_op.drop_column('quorum')
        batch_op.drop_column('locations')

    with op.batch_alter_table('location_results', schema=None) as batch_op:
        batch_op.drop_index('ix_location_results_monitor_at')
        batch_op.drop_index('ix_location_results_location_at')

    op.drop_table('location_results')
    op.drop_table('agent_batches')
    op.drop_table('locations')
