"""Consent that can be withdrawn, in rujukan on its migrated database through the
handlers: an officer records the withdrawal (day, by whom, note) on the client's word;
every referral of the client then hides the identity from the receiving partner (the
referral read, and with it the letter and FHIR Patient) while staff still see it; the
history says why; a new referral needs consent given after the withdrawal; a minor's
consent names the guardian, sealed like the client's identity."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from marshmallow import ValidationError
from sqlalchemy import select

from bersinar.contracts.referrals import ConsentWithdrawal, ReferralCreate, TransferInput
from bersinar.errors import DomainError
from harness.data import CLIENT_NAME, nik_for, transfer_body
from services.rujukan import handlers
from services.rujukan.models import AccessAudit, Referral
from tests.integration.test_rujukan_rotation import (
    BEFORE,
    DURING,
    OFFICER,
    PARTNER,
    body,
    cipher,
    partnered,
    with_partner,
)

PARTNER_ACTOR = {"role": "partner", "key_id": "k-kipas", "partner_id": PARTNER}
OTHER_PARTNER = "yayasan-pesona"
OTHER_PARTNER_ACTOR = {"role": "partner", "key_id": "k-pesona", "partner_id": OTHER_PARTNER}
NOW = datetime(2026, 6, 15, 3, 0, tzinfo=UTC)


@pytest.fixture
def factory(empty_database):
    for factory in partnered(empty_database):
        with_partner(factory, OTHER_PARTNER)  # where a transfer takes the client
        yield factory


def refer(factory, request: dict, keys: dict = BEFORE, now: datetime = NOW) -> dict:
    with factory() as uow:
        made = handlers.create_referral(
            uow, cipher(keys), ReferralCreate().load(request), OFFICER, now
        )
        uow.commit()
    return made


def read(factory, referral_id: str, actor=OFFICER, keys: dict = BEFORE) -> dict:
    with factory() as uow:
        found = handlers.get_referral(uow, cipher(keys), actor, referral_id, None, NOW)
        uow.commit()
    return found


def withdraw(factory, referral_id: str, actor=OFFICER, now=NOW, **payload) -> dict:
    with factory() as uow:
        done = handlers.withdraw_consent(
            uow, actor, referral_id, ConsentWithdrawal().load(payload), now
        )
        uow.commit()
    return done


def refused(call) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call()
    return caught.value


def test_a_withdrawal_hides_the_identity_from_the_partner_and_stops_new_referrals(factory):
    first = refer(factory, body(1))
    with factory() as uow:
        handlers.transition(uow, PARTNER_ACTOR, first["id"], "accept", {}, NOW)
        uow.commit()
    second = refer(factory, body(1), now=NOW + timedelta(minutes=5))  # the same client again
    assert read(factory, first["id"], PARTNER_ACTOR)["client"]["identity"]["name"] == CLIENT_NAME

    # partners and other roles may not record it
    for actor in (PARTNER_ACTOR, {"role": "national", "key_id": "k-n"}):
        error = refused(lambda a=actor: withdraw(factory, first["id"], a))
        assert error.status in (403, 404)
    wrong_day = refused(lambda: withdraw(factory, first["id"], withdrawn_on="2026-06-20"))
    assert (wrong_day.status, list(wrong_day.errors)) == (422, ["withdrawn_on"])

    later = NOW + timedelta(hours=1)
    done = withdraw(factory, first["id"], now=later, note="Klien menyatakan mencabut.")
    assert done["consent_withdrawn_on"] == "2026-06-15"
    assert sorted(done["referrals_affected"]) == sorted([first["id"], second["id"]])
    again = refused(lambda: withdraw(factory, second["id"], now=later))
    assert (again.status, again.code) == (409, "CONSENT_WITHDRAWN")

    # a partner opens no attachment of the client any more (they carry the name)
    with factory() as uow:
        attachment = refused(
            lambda: handlers.audit_attachment(uow, PARTNER_ACTOR, first["id"], "unduh", later)
        )
        handlers.audit_attachment(uow, OFFICER, first["id"], "unduh", later)  # staff may
    assert (attachment.status, attachment.code) == (409, "CONSENT_WITHDRAWN")
    with factory() as uow:
        audits_before = len(uow.session.scalars(select(AccessAudit)).all())
    for rid in (first["id"], second["id"]):
        seen = read(factory, rid, PARTNER_ACTOR)
        assert seen["client"]["identity"] is None
        assert seen["consent"]["withdrawn_by"] == "officer:k-officer"
        assert seen["consent"]["withdrawal_note"] == "Klien menyatakan mencabut."
        assert read(factory, rid)["client"]["identity"]["name"] == CLIENT_NAME  # staff
    with factory() as uow:
        audited = uow.session.scalars(select(AccessAudit)).all()
        # the partner's reads showed no identity: only the officer's two are audited
        assert len(audited) == audits_before + 2
        history = uow.session.get(Referral, first["id"]).history
        last = history[-1]
        assert (last.from_status, last.to_status, last.reason, last.note) == (
            "accepted",
            "accepted",
            "consent_withdrawn",
            "Klien menyatakan mencabut.",
        )

    # no new referral without consent given after the withdrawal
    for given_at in (None, (later - timedelta(minutes=1)).isoformat()):
        request = body(1)
        request["consent"] = {"given": True, "given_at": given_at}
        error = refused(lambda r=request: refer(factory, r, now=later + timedelta(hours=1)))
        assert (error.status, error.code) == (422, "CONSENT_REQUIRED")
        assert "given_at" in error.errors["consent"]
    request = body(1)
    request["consent"] = {"given": True, "given_at": (later + timedelta(minutes=30)).isoformat()}
    renewed = refer(factory, request, now=later + timedelta(hours=1))
    assert read(factory, renewed["id"], PARTNER_ACTOR)["client"]["identity"]["name"] == (
        CLIENT_NAME
    )
    # another person is not concerned
    assert refer(factory, body(2))["status"] == "requested"


def minor(**consent) -> dict:
    birth = date(2012, 4, 1)
    request = body(9, birth=birth)
    request["client"]["nik"] = nik_for(birth, "M", serial=9)
    request["consent"] = {"given": True, **consent}
    return request


def test_a_minors_consent_records_the_guardian_sealed(factory):
    error = refused(lambda: refer(factory, minor()))
    assert (error.status, error.code) == (422, "CONSENT_REQUIRED")
    assert set(error.errors["consent"]) == {"given_by", "guardian_name", "guardian_relationship"}
    made = refer(
        factory,
        minor(given_by="guardian", guardian_name="Rusli Effendi", guardian_relationship="parent"),
    )
    with factory() as uow:
        stored = uow.session.get(Referral, made["id"]).consent
    assert stored["guardian_relationship"] == "parent"
    assert "Rusli" not in stored["guardian_name"]  # sealed
    consent = read(factory, made["id"])["consent"]
    assert (consent["guardian_name"], consent["given_by"]) == ("Rusli Effendi", "guardian")
    # the rotation reseals it with the new key
    with factory() as uow:
        handlers.rekey_clients(uow, cipher(DURING))
        uow.commit()
    assert read(factory, made["id"], keys=DURING)["consent"]["guardian_name"] == "Rusli Effendi"
    # withdrawn: the partner sees neither the client nor the guardian
    withdraw(factory, made["id"], now=NOW + timedelta(hours=1))
    hidden = read(factory, made["id"], PARTNER_ACTOR, keys=DURING)
    assert hidden["client"]["identity"] is None and hidden["consent"]["guardian_name"] is None


# --- a transfer discloses the client to another partner: consent to that first ----------


def transfer(factory, referral_id: str, consent: dict | None, now=NOW, keys: dict = BEFORE):
    command = transfer_body(OTHER_PARTNER, "Dekat keluarga.")
    del command["consent"]
    if consent is not None:
        command["consent"] = consent
    with factory() as uow:
        moved = handlers.transition(
            uow,
            OFFICER,
            referral_id,
            "transfer",
            TransferInput().load(command),
            now,
            cipher=cipher(keys),
        )
        uow.commit()
    return moved


def admitted(factory, request: dict) -> str:
    referral_id = refer(factory, request)["id"]
    for action in ("accept", "admit"):
        with factory() as uow:
            handlers.transition(uow, PARTNER_ACTOR, referral_id, action, {}, NOW)
            uow.commit()
    return referral_id


def test_a_transfer_records_the_consent_to_disclose_to_the_new_partner(factory):
    referral_id = admitted(factory, body(3))
    with pytest.raises(ValidationError):  # the API refuses a transfer without it
        TransferInput().load({"partner_id": OTHER_PARTNER})
    error = refused(lambda: transfer(factory, referral_id, {"given": False}))
    assert (error.status, error.code) == (422, "CONSENT_REQUIRED")
    assert read(factory, referral_id)["status"] == "admitted"

    given_at = (NOW - timedelta(minutes=5)).isoformat()
    moved = transfer(factory, referral_id, {"given": True, "given_at": given_at})
    successor = read(factory, moved["transferred_to_id"])
    assert successor["partner_id"] == OTHER_PARTNER
    assert successor["consent"]["given_at"] == "2026-06-15T02:55:00Z"
    assert read(factory, referral_id)["consent"]["given_at"] != successor["consent"]["given_at"]


def test_a_minor_is_transferred_only_with_the_guardians_consent_after_any_withdrawal(factory):
    guardian = {
        "given": True,
        "given_by": "guardian",
        "guardian_name": "Siti Wali",
        "guardian_relationship": "parent",
    }
    referral_id = admitted(factory, minor(**guardian))
    error = refused(lambda: transfer(factory, referral_id, {"given": True}))
    assert (error.status, error.code) == (422, "CONSENT_REQUIRED")
    assert set(error.errors["consent"]) == {"given_by", "guardian_name", "guardian_relationship"}

    later = NOW + timedelta(hours=2)
    withdraw(factory, referral_id, now=later, note="Wali mencabut.")
    # consent older than the withdrawal does not carry the client to a new partner
    error = refused(lambda: transfer(factory, referral_id, guardian, now=later))
    assert "given_at" in error.errors["consent"]
    assert read(factory, referral_id)["status"] == "admitted"
    renewed = {**guardian, "given_at": (later + timedelta(minutes=1)).isoformat()}
    moved = transfer(factory, referral_id, renewed, now=later + timedelta(minutes=5))
    successor = read(factory, moved["transferred_to_id"])
    assert successor["consent"]["guardian_name"] == "Siti Wali"  # unsealed for staff
    with factory() as uow:  # sealed where it is stored
        stored = uow.session.get(Referral, moved["transferred_to_id"]).consent
        assert "Siti Wali" not in str(stored)
    seen = read(factory, moved["transferred_to_id"], OTHER_PARTNER_ACTOR)
    assert seen["client"]["identity"] is not None  # the new partner was consented to
