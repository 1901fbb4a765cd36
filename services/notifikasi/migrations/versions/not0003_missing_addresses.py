"""missing addresses

Revision ID: not0003
Revises: not0002
Create Date: 2026-12-02 03:10:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = 'not0003'
down_revision = 'not0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('missing_addresses',
    sa.Column('recipient', sa.String(length=100), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('recipient_name', sa.String(length=200), nullable=True),
    sa.Column('skipped', sa.Integer(), nullable=False),
    sa.Column('first_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('recipient', 'channel', 'day')
    )
    op.create_index(op.f('ix_missing_addresses_last_at'), 'missing_addresses', ['last_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_missing_addresses_last_at'), table_name='missing_addresses')
    op.drop_table('missing_addresses')
