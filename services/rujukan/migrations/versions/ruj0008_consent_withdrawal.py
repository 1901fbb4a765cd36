"""when a client withdrew consent (a new referral then needs consent given after it)

Revision ID: ruj0008
Revises: ruj0007
Create Date: 2026-12-04 23:50:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "ruj0008"
down_revision = "ruj0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "clients", sa.Column("consent_withdrawn_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("clients", "consent_withdrawn_at")
