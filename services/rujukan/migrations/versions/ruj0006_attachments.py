"""attachments of referrals (signed consent, the assessment team's recommendation),
sealed with the clients' cipher

Revision ID: ruj0006
Revises: ruj0005
Create Date: 2026-12-04 23:00:00.000000
"""

from bersinar.migrations import create_attachments_table, drop_attachments_table

revision = "ruj0006"
down_revision = "ruj0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_attachments_table()


def downgrade() -> None:
    drop_attachments_table()
