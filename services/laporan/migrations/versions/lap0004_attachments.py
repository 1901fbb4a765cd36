"""attachments of monthly reports (evidence)

Revision ID: lap0004
Revises: lap0003
Create Date: 2026-12-04 23:00:00.000000
"""

from bersinar.migrations import create_attachments_table, drop_attachments_table

revision = "lap0004"
down_revision = "lap0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_attachments_table()


def downgrade() -> None:
    drop_attachments_table()
