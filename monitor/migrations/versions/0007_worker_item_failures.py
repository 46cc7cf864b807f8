"""worker item failures: errors recorded on flips and on the desk's incidents; text that grows is Text

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('flips') as batch:
        batch.add_column(sa.Column('error', sa.Text(), nullable=True))
        batch.add_column(sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('incidents') as batch:
        batch.add_column(sa.Column('desk_error', sa.Text(), nullable=True))
        batch.add_column(sa.Column('desk_attempts', sa.Integer(), nullable=False, server_default='0'))
        batch.alter_column('title', existing_type=sa.String(length=300), type_=sa.Text(),
                           existing_nullable=False)
    with op.batch_alter_table('notifications') as batch:
        batch.alter_column('subject', existing_type=sa.String(length=300), type_=sa.Text(),
                           existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('notifications') as batch:
        batch.alter_column('subject', existing_type=sa.Text(), type_=sa.String(length=300))
    with op.batch_alter_table('incidents') as batch:
        batch.alter_column('title', existing_type=sa.Text(), type_=sa.String(length=300))
        batch.drop_column('desk_attempts')
        batch.drop_column('desk_error')
    with op.batch_alter_table('flips') as batch:
        batch.drop_column('failed_at')
        batch.drop_column('error')
