from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bersinar.attachments import attachment_table
from bersinar.db import messaging_tables


class Base(DeclarativeBase):
    pass


outbox, inbox = messaging_tables(Base.metadata)
# evidence of each monthly report, kept under partner_id/period
attachments = attachment_table(Base.metadata)


class ReferralRecord(Base):
    """A referral as laporan counts it, from rujukan's events (no client identity): when
    it was requested, answered, admitted and ended. Each event sets its own columns, so
    the record is the same whatever order the events arrive in."""

    __tablename__ = "referral_records"

    referral_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    partner_id: Mapped[str] = mapped_column(String(64), index=True)
    period: Mapped[str] = mapped_column(String(7), index=True)  # the month of the request
    service_type: Mapped[str] = mapped_column(String(16))
    sex: Mapped[str] = mapped_column(String(1))
    age_group: Mapped[str] = mapped_column(String(8))
    source: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    request_seen: Mapped[bool] = mapped_column(default=False)
    responded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    accepted: Mapped[bool | None] = mapped_column()
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    response_overdue_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    admitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(16))
    # the discharge summary's codes (codes.DISCHARGE_OUTCOMES, DISCHARGE_REASONS), from
    # the ending event; none for care ended before summaries were recorded
    discharge_outcome: Mapped[str | None] = mapped_column(String(24))
    discharge_reasons: Mapped[list[str] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    # the moments the indicators of a period count by (services/laporan/queries.py)
    __table_args__ = (
        Index(
            "ix_referral_records_responded",
            "responded_at",
            postgresql_include=["partner_id", "accepted", "request_seen", "requested_at"],
        ),
        Index(
            "ix_referral_records_ended",
            "ended_at",
            postgresql_include=["partner_id", "outcome", "admitted_at"],
        ),
        Index("ix_referral_records_admitted", "admitted_at", "partner_id"),
        Index(
            "ix_referral_records_in_care",
            "admitted_at",
            "partner_id",
            postgresql_where=text("ended_at IS NULL"),
        ),
    )


class PartnerView(Base):
    """What laporan knows of a partner, from mitra's events."""

    __tablename__ = "partners"

    partner_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kabupaten_kota: Mapped[str] = mapped_column(String(100))
    sex_served: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    services: Mapped[list[dict]] = mapped_column(JSON, default=list)


class AgreementView(Base):
    """A cooperation agreement (PKS) as laporan needs it: who owes reports, and targets."""

    __tablename__ = "agreements"

    agreement_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    partner_id: Mapped[str] = mapped_column(String(64), index=True)
    number: Mapped[str] = mapped_column(String(100))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    terminated_on: Mapped[date | None] = mapped_column(Date)
    annual_target: Mapped[int | None] = mapped_column(Integer)


class Report(Base):
    """One partner's report for one month. Its id is derived from (partner, period), so
    every instance that creates the expected report creates the same row."""

    __tablename__ = "reports"
    __table_args__ = (UniqueConstraint("partner_id", "period", name="uq_reports_partner_period"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    partner_id: Mapped[str] = mapped_column(String(64), index=True)
    period: Mapped[str] = mapped_column(String(7), index=True)
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))
    # fixed by the first submission: on time or late
    timeliness: Mapped[str | None] = mapped_column(String(20))
    first_submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=0)
    reconciliation_differences: Mapped[int] = mapped_column(Integer, default=0)
    reopened: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    versions: Mapped[list[ReportVersion]] = relationship(
        back_populates="report", order_by="ReportVersion.version", cascade="all, delete-orphan"
    )
    history: Mapped[list[ReportHistory]] = relationship(
        order_by="ReportHistory.id", cascade="all, delete-orphan"
    )


class ReportVersion(Base):
    """Every submitted version is kept."""

    __tablename__ = "report_versions"

    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    content: Mapped[dict] = mapped_column(JSON)
    flags: Mapped[list[dict]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20))
    submitted_by: Mapped[str] = mapped_column(String(100))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    report: Mapped[Report] = relationship(back_populates="versions")


class ReportHistory(Base):
    """Submissions, reviews (with the officer's comment) and reopenings, in order."""

    __tablename__ = "report_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(100))
    comment: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReportNotice(Base):
    """One row per notice (due_soon, overdue) sent: the key refuses a second sender."""

    __tablename__ = "report_notices"

    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id"), primary_key=True)
    notice: Mapped[str] = mapped_column(String(16), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
