from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bersinar.db import messaging_tables


class Base(DeclarativeBase):
    pass


outbox, inbox = messaging_tables(Base.metadata)


class ReferralRecord(Base):
    """A referral as laporan counts it, from rujukan's events (no client identity)."""

    __tablename__ = "referral_records"

    referral_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    partner_id: Mapped[str] = mapped_column(String(64), index=True)
    period: Mapped[str] = mapped_column(String(7), index=True)
    service_type: Mapped[str] = mapped_column(String(16))
    sex: Mapped[str] = mapped_column(String(1))
    age_group: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
