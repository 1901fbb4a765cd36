"""indicators of a period at scale: each figure is counted in SQL over an index of the
moment it depends on (answered, ended, admitted; still in care), not by loading every
referral record of the year

Revision ID: lap0003
Revises: lap0002
Create Date: 2026-11-28 08:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "lap0003"
down_revision = "lap0002"
branch_labels = None
depends_on = None

STILL_OPEN = sa.text("ended_at IS NULL")


def upgrade() -> None:
    # each carries the columns its count reads, so the month's rows come from the index
    # alone (an index-only scan) instead of one heap page per row
    op.create_index(
        "ix_referral_records_responded",
        "referral_records",
        ["responded_at"],
        postgresql_include=["partner_id", "accepted", "request_seen", "requested_at"],
    )
    op.create_index(
        "ix_referral_records_ended",
        "referral_records",
        ["ended_at"],
        postgresql_include=["partner_id", "outcome", "admitted_at"],
    )
    # (admitted_at, partner_id): admissions of a year per partner from the index alone
    op.create_index(
        "ix_referral_records_admitted", "referral_records", ["admitted_at", "partner_id"]
    )
    op.create_index(
        "ix_referral_records_in_care",
        "referral_records",
        ["admitted_at", "partner_id"],
        postgresql_where=STILL_OPEN,
    )
    op.drop_index("ix_referral_records_admitted_at", table_name="referral_records")


def downgrade() -> None:
    op.create_index(
        "ix_referral_records_admitted_at", "referral_records", ["admitted_at"], unique=False
    )
    op.drop_index("ix_referral_records_in_care", table_name="referral_records")
    op.drop_index("ix_referral_records_admitted", table_name="referral_records")
    op.drop_index("ix_referral_records_ended", table_name="referral_records")
    op.drop_index("ix_referral_records_responded", table_name="referral_records")
