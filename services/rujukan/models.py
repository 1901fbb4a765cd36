from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
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
# a referral's signed consent and the assessment team's recommendation, sealed with the
# clients' cipher (they carry the client's name and signature)
attachments = attachment_table(Base.metadata)


class PartnerView(Base):
    """What rujukan knows of a partner, built only from mitra's events."""

    __tablename__ = "partner_view"

    partner_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    partner_name: Mapped[str] = mapped_column(String(200))
    kabupaten_kota: Mapped[str] = mapped_column(String(100))
    sex_served: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(24))
    services: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AgreementView(Base):
    __tablename__ = "agreement_view"

    agreement_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    partner_id: Mapped[str] = mapped_column(String(64), index=True)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    terminated: Mapped[bool] = mapped_column(default=False)
    # agreement_terminated: from this day on the agreement no longer counts
    terminated_on: Mapped[date | None] = mapped_column(Date)


class Client(Base):
    __tablename__ = "clients"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the pseudonym
    # HMAC of the NIK under key ``nik_key_id`` (RUJUKAN_NIK_HMAC_KEY): how a returning
    # client is found; unique, as two keys give one NIK two different digests
    nik_digest: Mapped[str] = mapped_column(String(64), unique=True)
    nik_key_id: Mapped[str] = mapped_column(String(32), index=True)
    nik_encrypted: Mapped[str] = mapped_column(Text)
    name_encrypted: Mapped[str] = mapped_column(Text)
    phone_encrypted: Mapped[str | None] = mapped_column(Text)
    # the id of the key the three ciphertexts were written with (``bersinar crypto rotate``)
    key_id: Mapped[str] = mapped_column(String(32), index=True)
    birth_date: Mapped[date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(1))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the NIK key whose derived name key made the client's name tokens (ClientNameToken);
    # empty until indexed (``bersinar crypto rotate`` indexes clients stored before)
    name_index_key_id: Mapped[str | None] = mapped_column(String(32), index=True)
    # the client withdrew consent then (its referrals' consent says by whom and why): a
    # new referral needs consent given after it
    consent_withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ClientNameToken(Base):
    """The blind index of client names: one keyed digest per normalised token of the
    name (``crypto.name_tokens``), never the token itself. A search by name digests its
    words the same way and finds the clients that hold every one."""

    __tablename__ = "client_name_tokens"

    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True
    )
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)

    __table_args__ = (Index("ix_client_name_tokens_digest", "digest", "client_id"),)


class Referral(Base):
    __tablename__ = "referrals"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"), index=True)
    partner_id: Mapped[str] = mapped_column(String(64))
    service_type: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    age_group: Mapped[str] = mapped_column(String(8))
    consent: Mapped[dict[str, Any]] = mapped_column(JSON)
    assessment: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    previous_referral_id: Mapped[str | None] = mapped_column(String(36))
    # a transfer ends this referral and opens a new one at another partner
    transferred_from_id: Mapped[str | None] = mapped_column(String(36))
    transferred_to_id: Mapped[str | None] = mapped_column(String(36))
    rejection_reason: Mapped[str | None] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the partner must answer (accept or reject) by then
    response_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    responded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    admitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # set once, in the transaction that emits referral_response_overdue
    overdue_notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_referrals_response_due", "status", "response_due_at"),
        # the list's order (newest first) after each of its filters: a page is a range
        # of one index, at 10 thousand referrals or a million
        Index("ix_referrals_created", "created_at", "id"),
        Index("ix_referrals_partner_created", "partner_id", "created_at", "id"),
        Index("ix_referrals_status_created", "status", "created_at", "id"),
        Index("ix_referrals_partner_status_created", "partner_id", "status", "created_at", "id"),
    )

    # loaded with the referrals in one more query, not one query per referral of a page
    client: Mapped[Client] = relationship(lazy="selectin")
    history: Mapped[list[ReferralHistory]] = relationship(
        back_populates="referral", order_by="ReferralHistory.id", cascade="all, delete-orphan"
    )


class ReferralHistory(Base):
    __tablename__ = "referral_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    referral_id: Mapped[str] = mapped_column(ForeignKey("referrals.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)  # a coded reason (rejection)
    note: Mapped[str | None] = mapped_column(Text)  # free text typed by a person
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    referral: Mapped[Referral] = relationship(back_populates="history")


class AccessAudit(Base):
    """Every read of a client's identity: who, when, which referral, why."""

    __tablename__ = "access_audit"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(100), index=True)
    actor_role: Mapped[str] = mapped_column(String(16))
    actor_partner_id: Mapped[str | None] = mapped_column(String(64))
    referral_id: Mapped[str] = mapped_column(String(36), index=True)
    client_id: Mapped[str] = mapped_column(String(36))
    purpose: Mapped[str] = mapped_column(String(200))
    correlation_id: Mapped[str | None] = mapped_column(String(64))


class LetterCounter(Base):
    """The last letter number given in a year: one row per year, raised in the
    transaction that issues a letter (its row lock makes concurrent issues wait their
    turn, and a rolled-back issue gives its number back with it: none is used twice)."""

    __tablename__ = "letter_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(Integer)


class ReferralLetter(Base):
    """The surat rujukan of a referral: one per referral, numbered the first time it is
    asked for; every later print carries the same number. Who issued it and when."""

    __tablename__ = "referral_letters"

    referral_id: Mapped[str] = mapped_column(ForeignKey("referrals.id"), primary_key=True)
    number: Mapped[str] = mapped_column(String(100), unique=True)
    year: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    issued_by: Mapped[str] = mapped_column(String(100))
    issued_by_role: Mapped[str] = mapped_column(String(16))

    __table_args__ = (UniqueConstraint("year", "seq", name="uq_referral_letters_year_seq"),)


class ReferralDischarge(Base):
    """How care ended (complete, drop-out, transfer): the outcome and reasons (codes, also
    in the ending event), the aftercare plan (case data: shown with the referral, never
    in an event) and the day to follow the client up, of which the partner is reminded
    once (``follow_up_reminded_at`` set in the transaction that emits the reminder)."""

    __tablename__ = "referral_discharges"

    referral_id: Mapped[str] = mapped_column(ForeignKey("referrals.id"), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(24))
    reasons: Mapped[list[str]] = mapped_column(JSON)
    aftercare_plan: Mapped[str | None] = mapped_column(Text)
    follow_up_on: Mapped[date | None] = mapped_column(Date)
    follow_up_reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # the reminders still to send, by day
        Index(
            "ix_referral_discharges_follow_up_due",
            "follow_up_on",
            postgresql_where=text("follow_up_on IS NOT NULL AND follow_up_reminded_at IS NULL"),
        ),
    )
