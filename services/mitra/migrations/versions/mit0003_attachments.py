"""attachments of agreements (the signed PKS)

Revision ID: mit0003
Revises: mit0002
Create Date: 2026-12-04 23:00:00.000000
"""

from bersinar.migrations import create_attachments_table, drop_attachments_table

revision = "mit0003"
down_revision = "mit0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_attachments_table()


def downgrade() -> None:
    drop_attachments_table()
