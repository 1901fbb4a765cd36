"""referral lifecycle: timestamps and links of a referral, the response deadline, coded
reasons and notes in the history, the key id of client ciphertexts, terminated agreements,
the audit log of identity reads

Revision ID: ruj0002
Revises: ruj0001
Create Date: 2026-11-28 05:30:00.000000
"""
from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision = 'ruj0002'
down_revision = 'ruj0001'
branch_labels = None
depends_on = None

# what a referral made before this revision is given as its deadline
DEFAULT_RESPONSE_HOURS = 48



def upgrade() -> None:
    bind = op.get_bind()
    op.add_column('agreement_view', sa.Column('terminated_on', sa.Date(), nullable=True))

    op.add_column(
        'clients',
        sa.Column('key_id', sa.String(length=32), nullable=False, server_default=''),
    )
    # the key id is the prefix of every ciphertext ("kid:token")
    clients = sa.table('clients', sa.column('id', sa.String), sa.column('nik_encrypted', sa.Text),
                       sa.column('key_id', sa.String))
    for client_id, stored in bind.execute(sa.select(clients.c.id, clients.c.nik_encrypted)).all():
        bind.execute(
            clients.update().where(clients.c.id == client_id)
            .values(key_id=stored.partition(':')[0])
        )
    op.alter_column('clients', 'key_id', server_default=None)
    op.create_index(op.f('ix_clients_key_id'), 'clients', ['key_id'], unique=False)

    for column in (
        sa.Column('transferred_from_id', sa.String(length=36), nullable=True),
        sa.Column('transferred_to_id', sa.String(length=36), nullable=True),
        sa.Column('rejection_reason', sa.String(length=32), nullable=True),
        sa.Column('response_due_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('responded_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('admitted_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('overdue_notified_at', sa.DateTime(timezone=True), nullable=True),
    ):
        op.add_column('referrals', column)
    op.create_index('ix_referrals_created', 'referrals', ['created_at', 'id'], unique=False)
    op.create_index(
        'ix_referrals_response_due', 'referrals', ['status', 'response_due_at'], unique=False
    )

    referrals = sa.table(
        'referrals',
        sa.column('id', sa.String),
        sa.column('created_at', sa.DateTime(timezone=True)),
        sa.column('response_due_at', sa.DateTime(timezone=True)),
    )
    for referral_id, created_at in bind.execute(
        sa.select(referrals.c.id, referrals.c.created_at)
    ).all():
        bind.execute(
            referrals.update().where(referrals.c.id == referral_id)
            .values(response_due_at=created_at + timedelta(hours=DEFAULT_RESPONSE_HOURS))
        )

    op.add_column('referral_history', sa.Column('note', sa.Text(), nullable=True))

    op.create_table('access_audit',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('actor_role', sa.String(length=16), nullable=False),
    sa.Column('actor_partner_id', sa.String(length=64), nullable=True),
    sa.Column('referral_id', sa.String(length=36), nullable=False),
    sa.Column('client_id', sa.String(length=36), nullable=False),
    sa.Column('purpose', sa.String(length=200), nullable=False),
    sa.Column('correlation_id', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_access_audit_actor'), 'access_audit', ['actor'], unique=False)
    op.create_index(op.f('ix_access_audit_at'), 'access_audit', ['at'], unique=False)
    op.create_index(
        op.f('ix_access_audit_referral_id'), 'access_audit', ['referral_id'], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f('ix_access_audit_referral_id'), table_name='access_audit')
    op.drop_index(op.f('ix_access_audit_at'), table_name='access_audit')
    op.drop_index(op.f('ix_access_audit_actor'), table_name='access_audit')
    op.drop_table('access_audit')

    op.drop_column('referral_history', 'note')

    op.drop_index('ix_referrals_response_due', table_name='referrals')
    op.drop_index('ix_referrals_created', table_name='referrals')
    for column in (
        'overdue_notified_at',
        'ended_at',
        'admitted_at',
        'responded_at',
        'response_due_at',
        'rejection_reason',
        'transferred_to_id',
        'transferred_from_id',
    ):
        op.drop_column('referrals', column)

    op.drop_index(op.f('ix_clients_key_id'), table_name='clients')
    op.drop_column('clients', 'key_id')

    op.drop_column('agreement_view', 'terminated_on')
