from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bersinar.db import messaging_tables


class Base(DeclarativeBase):
    pass


outbox, inbox = messaging_tables(Base.metadata)


class Partner(Base):
    __tablename__ = "partners"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    kabupaten_kota: Mapped[str] = mapped_column(String(100), index=True)
    address: Mapped[str] = mapped_column(Text, default="")
    sex_served: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(24), default="active")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    offers: Mapped[list[ServiceOffer]] = relationship(
        back_populates="partner", cascade="all, delete-orphan", order_by="ServiceOffer.service_type"
    )
    agreements: Mapped[list[Agreement]] = relationship(
        back_populates="partner", cascade="all, delete-orphan", order_by="Agreement.valid_from"
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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    partner: Mapped[Partner] = relationship(back_populates="agreements")
