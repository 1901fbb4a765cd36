from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bersinar.attachments import attachment_table
from bersinar.db import messaging_tables


class Base(DeclarativeBase):
    pass


outbox, inbox = messaging_tables(Base.metadata)
# the signed PKS of each agreement
attachments = attachment_table(Base.metadata)


class Partner(Base):
    __tablename__ = "partners"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    kabupaten_kota: Mapped[str] = mapped_column(String(100), index=True)
    address: Mapped[str] = mapped_column(Text, default="")
    sex_served: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(24), default="active")
    age_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    accreditation: Mapped[str | None] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    offers: Mapped[list[ServiceOffer]] = relationship(
        back_populates="partner", cascade="all, delete-orphan", order_by="ServiceOffer.service_type"
    )
    agreements: Mapped[list[Agreement]] = relationship(
        back_populates="partner", cascade="all, delete-orphan", order_by="Agreement.valid_from"
    )
    contacts: Mapped[list[Contact]] = relationship(
        back_populates="partner", cascade="all, delete-orphan", order_by="Contact.position"
    )


class ServiceOffer(Base):
    __tablename__ = "service_offers"

    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    service_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    capacity: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(32), default="klien")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    partner: Mapped[Partner] = relationship(back_populates="offers")


class Agreement(Base):
    __tablename__ = "agreements"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    number: Mapped[str] = mapped_column(String(100), unique=True)
    signed_on: Mapped[date] = mapped_column(Date)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    annual_target: Mapped[int] = mapped_column(Integer, default=0)
    scope: Mapped[list[str]] = mapped_column(JSON, default=list)
    document_ref: Mapped[str | None] = mapped_column(String(300))
    renews_agreement_id: Mapped[str | None] = mapped_column(String(36))
    terminated_on: Mapped[date | None] = mapped_column(Date)
    termination_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    partner: Mapped[Partner] = relationship(back_populates="agreements")


class AgreementNotice(Base):
    """One row per notice sent (or covered by a later one): the database guarantees each
    is emitted once, however many instances check at the same moment."""

    __tablename__ = "agreement_notices"

    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreements.id"), primary_key=True)
    notice: Mapped[str] = mapped_column(String(16), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Contact(Base):
    """A person at a partner (staff, not clients): never carried in events."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20))
    whatsapp: Mapped[str | None] = mapped_column(String(20))

    partner: Mapped[Partner] = relationship(back_populates="contacts")


class Activity(Base):
    """Capacity building (training, facilitation, coordination) and monitoring visits."""

    __tablename__ = "activities"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    held_on: Mapped[date] = mapped_column(Date, index=True)
    title: Mapped[str] = mapped_column(String(200))
    participants: Mapped[list[str]] = mapped_column(JSON, default=list)
    findings: Mapped[str] = mapped_column(Text, default="")
    # none_as_null: an activity without scores is SQL NULL, not the JSON value null
    scores: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    follow_ups: Mapped[list[FollowUp]] = relationship(
        back_populates="activity", cascade="all, delete-orphan", order_by="FollowUp.due_on"
    )


class FollowUp(Base):
    __tablename__ = "follow_ups"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    activity_id: Mapped[str] = mapped_column(ForeignKey("activities.id"), index=True)
    description: Mapped[str] = mapped_column(Text)
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="open")

    activity: Mapped[Activity] = relationship(back_populates="follow_ups")
