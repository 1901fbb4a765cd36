"""reports, their versions, history and notices; partners and agreements; referral
records with answers, admissions and outcomes

Revision ID: lap0002
Revises: lap0001
Create Date: 2026-11-28 05:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "lap0002"
down_revision = "lap0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("referral_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=32), nullable=True))
        # rows before this revision were all written by referral_requested
        batch_op.add_column(
            sa.Column("request_seen", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("accepted", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("response_overdue_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("outcome", sa.String(length=16), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_referral_records_admitted_at"), ["admitted_at"], unique=False
        )
    with op.batch_alter_table("referral_records", schema=None) as batch_op:
        batch_op.alter_column("request_seen", server_default=None)

    op.create_table(
        "partners",
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kabupaten_kota", sa.String(length=100), nullable=False),
        sa.Column("sex_served", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("services", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("partner_id"),
    )
    op.create_table(
        "agreements",
        sa.Column("agreement_id", sa.String(length=36), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.String(length=100), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("terminated_on", sa.Date(), nullable=True),
        sa.Column("annual_target", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("agreement_id"),
    )
    with op.batch_alter_table("agreements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agreements_partner_id"), ["partner_id"], unique=False)

    op.create_table(
        "reports",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("timeliness", sa.String(length=20), nullable=True),
        sa.Column("first_submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("reconciliation_differences", sa.Integer(), nullable=False),
        sa.Column("reopened", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("partner_id", "period", name="uq_reports_partner_period"),
    )
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reports_partner_id"), ["partner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reports_period"), ["period"], unique=False)

    op.create_table(
        "report_versions",
        sa.Column("report_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("submitted_by", sa.String(length=100), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"]),
        sa.PrimaryKeyConstraint("report_id", "version"),
    )
    op.create_table(
        "report_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("report_id", sa.String(length=36), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("report_history", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_report_history_report_id"), ["report_id"], unique=False
        )
    op.create_table(
        "report_notices",
        sa.Column("report_id", sa.String(length=36), nullable=False),
        sa.Column("notice", sa.String(length=16), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"]),
        sa.PrimaryKeyConstraint("report_id", "notice"),
    )


def downgrade() -> None:
    op.drop_table("report_notices")
    with op.batch_alter_table("report_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_history_report_id"))
    op.drop_table("report_history")
    op.drop_table("report_versions")
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reports_period"))
        batch_op.drop_index(batch_op.f("ix_reports_partner_id"))
    op.drop_table("reports")
    with op.batch_alter_table("agreements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agreements_partner_id"))
    op.drop_table("agreements")
    op.drop_table("partners")
    with op.batch_alter_table("referral_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_records_admitted_at"))
        for column in (
            "outcome",
            "ended_at",
            "admitted_at",
            "response_overdue_at",
            "cancelled_at",
            "accepted",
            "responded_at",
            "request_seen",
            "source",
        ):
            batch_op.drop_column(column)
