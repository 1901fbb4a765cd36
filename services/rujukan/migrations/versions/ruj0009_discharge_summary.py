"""the discharge summary of a referral whose care ended (complete, drop-out, transfer)

Revision ID: ruj0009_discharge_summary
Revises: ruj0008
Create Date: 2026-12-05 01:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "ruj0009_discharge_summary"
down_revision = "ruj0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "referral_discharges",
        sa.Column("referral_id", sa.String(36), sa.ForeignKey("referrals.id"), primary_key=True),
        sa.Column("outcome", sa.String(24), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("aftercare_plan", sa.Text(), nullable=True),
        sa.Column("follow_up_on", sa.Date(), nullable=True),
        sa.Column("follow_up_reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_by", sa.String(100), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_referral_discharges_follow_up_due",
        "referral_discharges",
        ["follow_up_on"],
        postgresql_where=sa.text("follow_up_on IS NOT NULL AND follow_up_reminded_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_referral_discharges_follow_up_due", table_name="referral_discharges")
    op.drop_table("referral_discharges")
