"""how care ended, per referral record: the discharge summary's outcome and reasons

Revision ID: lap0005_discharge
Revises: lap0004
Create Date: 2026-12-05 01:45:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "lap0005_discharge"
down_revision = "lap0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("referral_records", sa.Column("discharge_outcome", sa.String(24), nullable=True))
    op.add_column("referral_records", sa.Column("discharge_reasons", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("referral_records", "discharge_reasons")
    op.drop_column("referral_records", "discharge_outcome")
