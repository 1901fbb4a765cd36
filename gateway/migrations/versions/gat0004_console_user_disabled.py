"""console users can be disabled

Revision ID: gat0004
Revises: gat0003
Create Date: 2026-12-04 22:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "gat0004"
down_revision = "gat0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "console_users", sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("console_users", "disabled_at")
