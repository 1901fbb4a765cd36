"""FHIR Bulk Data exports and their NDJSON chunks

Revision ID: gat0005
Revises: gat0004
Create Date: 2026-12-04 23:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "gat0005"
down_revision = "gat0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fhir_exports",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("api_key_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("request_url", sa.Text(), nullable=False),
        sa.Column("types", sa.String(length=200), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("transaction_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("runner", sa.String(length=36), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("progress", sa.String(length=200), server_default="", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_fhir_exports_api_key_id", "fhir_exports", ["api_key_id"])
    op.create_index("ix_fhir_exports_status", "fhir_exports", ["status"])
    op.create_index("ix_fhir_exports_heartbeat_at", "fhir_exports", ["heartbeat_at"])
    op.create_table(
        "fhir_export_chunks",
        sa.Column("export_id", sa.String(length=36), nullable=False),
        sa.Column("resource_type", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["export_id"], ["fhir_exports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("export_id", "resource_type", "seq"),
    )


def downgrade() -> None:
    op.drop_table("fhir_export_chunks")
    op.drop_index("ix_fhir_exports_heartbeat_at", table_name="fhir_exports")
    op.drop_index("ix_fhir_exports_status", table_name="fhir_exports")
    op.drop_index("ix_fhir_exports_api_key_id", table_name="fhir_exports")
    op.drop_table("fhir_exports")
