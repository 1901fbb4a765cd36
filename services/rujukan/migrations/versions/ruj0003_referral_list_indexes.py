"""referral lists at scale: one index per filter of GET /referrals, each ending in the
list's order (created_at, id), so a page is read straight off an index however many
referrals there are; the single-column indexes they make redundant are dropped

Revision ID: ruj0003
Revises: ruj0002
Create Date: 2026-11-28 08:00:00.000000
"""

from alembic import op

revision = "ruj0003"
down_revision = "ruj0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_referrals_partner_status_created",
        "referrals",
        ["partner_id", "status", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_referrals_partner_created",
        "referrals",
        ["partner_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_referrals_status_created", "referrals", ["status", "created_at", "id"], unique=False
    )
    op.drop_index("ix_referrals_partner_id", table_name="referrals")
    op.drop_index("ix_referrals_status", table_name="referrals")


def downgrade() -> None:
    op.create_index("ix_referrals_status", "referrals", ["status"], unique=False)
    op.create_index("ix_referrals_partner_id", "referrals", ["partner_id"], unique=False)
    op.drop_index("ix_referrals_status_created", table_name="referrals")
    op.drop_index("ix_referrals_partner_created", table_name="referrals")
    op.drop_index("ix_referrals_partner_status_created", table_name="referrals")
