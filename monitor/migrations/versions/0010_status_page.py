"""status page: public updates on incidents, visitors' subscriptions, the services' status-page group

Revision ID: 0010
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('status_subscriptions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('address', sa.String(length=500), nullable=False),
    sa.Column('service_ids', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('channel_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('confirm_sha256', sa.String(length=64), nullable=True),
    sa.Column('confirm_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('site_url', sa.String(length=300), nullable=False),
    sa.Column('manage_token', sa.String(length=64), nullable=False),
    sa.Column('confirm_sends', sa.Integer(), nullable=False),
    sa.Column('confirm_sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('unsubscribed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['channel_id'], ['notification_channels.id'], name=op.f('fk_status_subscriptions_channel_id_notification_channels'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_status_subscriptions')),
    sa.UniqueConstraint('confirm_sha256', name=op.f('uq_status_subscriptions_confirm_sha256')),
    sa.UniqueConstraint('kind', 'address', name=op.f('uq_status_subscriptions_kind'))
    )
    op.create_table('incident_public_updates',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('incident_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_public_updates_incident_id_incidents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_incident_public_updates_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_public_updates'))
    )
    with op.batch_alter_table('incident_public_updates', schema=None) as batch_op:
        batch_op.create_index('ix_incident_public_updates_incident_at', ['incident_id', 'at'], unique=False)

    with op.batch_alter_table('services', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status_group', sa.String(length=100), nullable=False, server_default=''))



def downgrade() -> None:
    with op.batch_alter_table('services', schema=None) as batch_op:
        batch_op.drop_column('status_group')

    with op.batch_alter_table('incident_public_updates', schema=None) as batch_op:
        batch_op.drop_index('ix_incident_public_updates_incident_at')

    op.drop_table('incident_public_updates')
    op.drop_table('status_subscriptions')
