"""rujukan's handlers on its migrated database: the whole lifecycle, who may do what,
what a refusal leaves behind (nothing), privacy of reads, the audit log, the response
deadline, the partner read model and key rotation."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import eventlet
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select, text

from bersinar.contracts.events import EventContractError
from bersinar.db import UnitOfWorkFactory
from bersinar.envelope import FORBIDDEN_KEYS
from bersinar.errors import (
    CapacityFull,
    Conflict,
    ConsentRequired,
    Forbidden,
    InvalidTransition,
    NotEligible,
    NotFound,
    ValidationFailed,
)
from harness import produced
from harness.data import transfer_body
from services.rujukan import handlers
from services.rujukan.crypto import ClientCipher
from services.rujukan.domain import DeadlinePolicy, LetterNumbering, short_code
from services.rujukan.models import (
    AccessAudit,
    Base,
    Client,
    Referral,
    ReferralHistory,
    ReferralLetter,
)

HMAC_KEY = "unit-test-nik-hmac-key-32-chars-long!"
NOW = datetime(2026, 6, 15, 3, 0, tzinfo=UTC)  # 10:00 WIB
OFFICER = {"role": "officer", "key_id": "k-officer", "partner_id": None}
ADMIN = {"role": "admin", "key_id": "k-admin", "partner_id": None}
KARUNIA = {"role": "partner", "key_id": "k-karunia", "partner_id": "yayasan-karunia-insani"}
KIPAS = {"role": "partner", "key_id": "k-kipas", "partner_id": "yayasan-kipas"}
NATIONAL = {"role": "national", "key_id": "k-national", "partner_id": None}
NAME, PHONE = "Siti Rahmawati", "081298765432"
NIK_F = "1771014503950012"  # woman born 5 Mar 1995
NIK_M = "1771011708900001"  # man born 17 Aug 1990
# the discharge summary complete, drop-out and transfer record (as loaded by the contract)
SUMMARY = {"discharge": {"outcome": "improved", "reasons": ["program_completed"]}}


@pytest.fixture
def cipher():
    return ClientCipher(f"k1:{Fernet.generate_key().decode()}", HMAC_KEY)


@pytest.fixture
def factory(empty_database):
    factory = UnitOfWorkFactory(empty_database("rujukan"), "rujukan", Base.metadata)
    yield factory
    factory.dispose()


def snapshot(partner_id, sex_served="all", services=None, version=1, status="active", area=None):
    """partner_updated as mitra builds it (``services``: ``(type, capacity, unit)``)."""
    return produced.partner_event(
        "partner_updated",
        partner_id,
        sex_served=sex_served,
        offers=produced.offers(*(services or [("inpatient", 2, "tempat tidur")])),
        version=version,
        status=status,
        kabupaten_kota=area or "Rejang Lebong",
    )


def agreement(partner_id, valid_from="2023-05-30", valid_until="2028-05-29", agreement_id=None):
    start, end = date.fromisoformat(valid_from), date.fromisoformat(valid_until)
    return produced.agreement_signed(
        partner_id,
        today=NOW.date(),
        id=agreement_id or f"pks-{partner_id}",
        signed_on=start,
        valid_from=start,
        valid_until=end,
    )


@pytest.fixture
def partners(factory):
    with factory() as uow:
        handlers.apply_partner_snapshot(uow, snapshot("yayasan-karunia-insani", "female"))
        handlers.apply_agreement(uow, agreement("yayasan-karunia-insani"))
        handlers.apply_partner_snapshot(
            uow,
            snapshot(
                "yayasan-kipas",
                services=[("inpatient", 5, "tempat tidur"), ("outpatient", 5, "orang")],
                area="Kota Bengkulu",
            ),
        )
        handlers.apply_agreement(uow, agreement("yayasan-kipas"))
        uow.commit()
    return factory


def body(partner_id="yayasan-karunia-insani", nik=NIK_F, sex="F", birth=date(1995, 3, 5), **kw):
    command = {
        "client": {"nik": nik, "name": NAME, "birth_date": birth, "sex": sex, "phone": PHONE},
        "source": "TAT",
        "service_type": "inpatient",
        "partner_id": partner_id,
        "consent": {"given": True, "given_by": "client", "scope": ["treatment"]},
        "assessment": {
            "primary_substance": "methamphetamine",
            "assist_scores": [{"substance": "methamphetamine", "score": 28}],
            "recommended_level_of_care": "inpatient",
            "notes": f"keluarga {NAME} mendampingi",
        },
    }
    command.update(kw)
    return command


def create(factory, cipher, actor=OFFICER, now=NOW, policy=None, **kw):
    with factory() as uow:
        result = handlers.create_referral(uow, cipher, body(**kw), actor, now, policy)
        uow.commit()
    return result


# a transfer seals a guardian's name in the consent it records
MOVE_CIPHER = ClientCipher(f"k1:{Fernet.generate_key().decode()}", HMAC_KEY)


def move(factory, actor, referral_id, action, command=None, now=NOW):
    with factory() as uow:
        result = handlers.transition(
            uow, actor, referral_id, action, command, now, cipher=MOVE_CIPHER
        )
        uow.commit()
    return result


def state(factory):
    """Everything a refused command could have touched."""
    with factory() as uow:
        return (
            uow.session.execute(text("SELECT id, status, updated_at FROM referrals")).all(),
            uow.session.scalar(select(func.count()).select_from(ReferralHistory)),
            uow.session.scalar(text("SELECT COUNT(*) FROM outbox")),
            uow.session.scalar(select(func.count()).select_from(Client)),
        )


def events(factory, event_type=None):
    with factory() as uow:
        rows = uow.session.execute(text("SELECT payload FROM outbox ORDER BY id")).all()
    found = [json.loads(row[0]) for row in rows]
    return [e for e in found if event_type in (None, e["event_type"])]


# --- the happy path and its history ---------------------------------------------------


def test_requested_accepted_admitted_completed_with_history_and_events(partners, cipher):
    referral = create(partners, cipher)
    assert referral["status"] == "requested"
    assert referral["response_due_at"] == "2026-06-17T03:00:00Z"  # 48 h
    rid = referral["id"]
    later = [NOW + timedelta(hours=h) for h in (5, 30, 24 * 40)]
    assert move(partners, KARUNIA, rid, "accept", {}, later[0])["status"] == "accepted"
    assert move(partners, KARUNIA, rid, "admit", {"note": "kamar 3"}, later[1])["status"] == (
        "admitted"
    )
    done = move(partners, KARUNIA, rid, "complete", SUMMARY, later[2])
    assert done["status"] == "completed"
    assert done["responded_at"] == "2026-06-15T08:00:00Z"
    assert done["ended_at"] is not None

    with partners() as uow:
        history = handlers.referral_history(uow, KARUNIA, rid)["items"]
    assert [(h["from_status"], h["to_status"]) for h in history] == [
        (None, "requested"),
        ("requested", "accepted"),
        ("accepted", "admitted"),
        ("admitted", "completed"),
    ]
    assert [h["actor"] for h in history] == [
        "officer:k-officer",
        "partner:k-karunia",
        "partner:k-karunia",
        "partner:k-karunia",
    ]
    assert history[2]["note"] == "kamar 3"
    assert [e["event_type"] for e in events(partners)] == [
        "referral_requested",
        "referral_accepted",
        "referral_admitted",
        "referral_completed",
    ]
    admitted = events(partners, "referral_admitted")[0]
    assert admitted["data"]["admitted_at"] == "2026-06-16T09:00:00Z"
    assert admitted["data"]["from_status"] == "accepted"
    assert admitted["data"]["age_group"] == "25-34"


def test_an_admission_named_for_an_earlier_day_is_recorded_and_told_for_that_day(partners, cipher):
    rid = create(partners, cipher)["id"]
    move(partners, KARUNIA, rid, "accept", {}, NOW)
    days_later = NOW + timedelta(days=3)
    before = state(partners)
    with pytest.raises(ValidationFailed) as refused:
        move(partners, KARUNIA, rid, "admit", {"admitted_on": date(2026, 6, 19)}, days_later)
    assert "admitted_on" in refused.value.errors
    assert state(partners) == before  # refused: nothing written
    admitted = move(partners, KARUNIA, rid, "admit", {"admitted_on": date(2026, 6, 16)}, days_later)
    # the first moment of 16 June in Bengkulu (WIB), not the moment it was recorded
    assert admitted["admitted_at"] == "2026-06-15T17:00:00Z"
    event = events(partners, "referral_admitted")[0]
    assert event["data"]["admitted_at"] == "2026-06-15T17:00:00Z"
    assert event["occurred_at"].startswith("2026-06-15T17:00:00")


def test_no_event_carries_identity_or_a_note(partners, cipher):
    rid = create(partners, cipher)["id"]
    move(partners, KARUNIA, rid, "reject", {"reason": "other", "note": f"{NAME} menolak"})
    for event in events(partners):
        payload = json.dumps(event)
        for secret in (NAME, PHONE, NIK_F, "menolak", "1995-03-05"):
            assert secret not in payload
        assert not FORBIDDEN_KEYS & set(event["data"])
        for key in ("partner_id", "service_type", "sex", "age_group", "source", "requested_at"):
            assert event["data"][key]


def test_rejection_carries_a_coded_reason(partners, cipher):
    rid = create(partners, cipher)["id"]
    with pytest.raises(ValidationFailed):
        move(partners, KARUNIA, rid, "reject", {"reason": "other"})  # other needs a note
    with pytest.raises(ValidationFailed):
        move(partners, KARUNIA, rid, "reject", {"reason": "bored"})
    rejected = move(partners, KARUNIA, rid, "reject", {"reason": "client_unreachable"})
    assert (rejected["status"], rejected["rejection_reason"]) == ("rejected", "client_unreachable")
    [event] = events(partners, "referral_rejected")
    assert event["data"]["reason"] == "client_unreachable"


# --- refusals store nothing -----------------------------------------------------------


@pytest.mark.parametrize(
    "actor,action,status_before,refusal",
    [
        (KARUNIA, "admit", "requested", InvalidTransition),  # skipping accept
        (KARUNIA, "complete", "requested", InvalidTransition),
        (KARUNIA, "accept", "accepted", InvalidTransition),  # twice
        (OFFICER, "cancel", "admitted", InvalidTransition),  # too late to cancel
        (ADMIN, "reject", "completed", InvalidTransition),  # terminal
        # a role that never takes the action: 403 whatever the state
        (OFFICER, "accept", "requested", Forbidden),  # officers do not answer for partners
        (KARUNIA, "cancel", "requested", Forbidden),  # partners do not cancel
        (KARUNIA, "transfer", "admitted", Forbidden),  # partners do not transfer
    ],
)
def test_an_illegal_move_is_refused_and_stores_nothing(
    partners, cipher, actor, action, status_before, refusal
):
    rid = create(partners, cipher)["id"]
    path = {
        "requested": [],
        "accepted": ["accept"],
        "admitted": ["accept", "admit"],
        "completed": ["accept", "admit", "complete"],
    }[status_before]
    for step in path:
        move(partners, KARUNIA, rid, step, SUMMARY if step == "complete" else None)
    before = state(partners)
    command = transfer_body("yayasan-kipas") if action == "transfer" else {"reason": "other"}
    with pytest.raises(refusal) as caught:
        move(partners, actor, rid, action, command)
    assert caught.value.status == (409 if refusal is InvalidTransition else 403)
    assert state(partners) == before


def test_a_male_client_to_a_female_only_partner_is_not_eligible_and_stores_nothing(
    partners, cipher
):
    before = state(partners)
    with pytest.raises(NotEligible) as caught:
        create(partners, cipher, nik=NIK_M, sex="M", birth=date(1990, 8, 17))
    assert "jenis kelamin" in caught.value.detail
    assert state(partners) == before


def test_without_consent_nothing_is_stored(partners, cipher):
    before = state(partners)
    with pytest.raises(ConsentRequired):
        create(partners, cipher, consent={"given": False})
    assert state(partners) == before


def test_an_event_that_breaks_its_contract_fails_the_command_and_stores_nothing(
    partners, cipher, monkeypatch
):
    """A producer's bug caught where it is made: rujukan's payload builder leaving out a
    field the contract of referral_requested requires fails the command at emit, and
    neither the referral, nor its client, nor its history, nor the event is stored."""
    build = handlers.referral_event_data

    def without_sex(*args):
        data = build(*args)
        del data["sex"]
        return data

    rid = create(partners, cipher)["id"]  # what is there already stays
    before = state(partners)
    monkeypatch.setattr(handlers, "referral_event_data", without_sex)
    with pytest.raises(EventContractError) as refused:
        create(partners, cipher, nik="1771014503950099")
    assert str(refused.value) == "referral_requested payload breaks its contract at data.sex"
    assert state(partners) == before
    with pytest.raises(EventContractError):
        move(partners, KARUNIA, rid, "accept")
    assert state(partners) == before
    monkeypatch.undo()
    assert move(partners, KARUNIA, rid, "accept")["status"] == "accepted"


def test_a_partner_may_not_create(partners, cipher):
    with pytest.raises(Forbidden):
        create(partners, cipher, actor=KARUNIA)


def test_capacity_is_checked_at_creation_and_again_at_acceptance(partners, cipher):
    # Karunia Insani has 2 inpatient places
    ids = [create(partners, cipher, nik=f"17710145039500{n:02d}")["id"] for n in range(1, 5)]
    move(partners, KARUNIA, ids[0], "accept")
    move(partners, KARUNIA, ids[1], "accept")
    before = state(partners)
    with pytest.raises(CapacityFull) as caught:
        move(partners, KARUNIA, ids[2], "accept")
    assert "2 dari 2" in caught.value.detail
    with pytest.raises(CapacityFull):
        create(partners, cipher, nik=NIK_F)
    assert state(partners) == before
    # a place freed by a cancellation can be taken again
    move(partners, OFFICER, ids[0], "cancel")
    assert move(partners, KARUNIA, ids[2], "accept")["status"] == "accepted"


def test_acceptance_rechecks_the_agreement(partners, cipher):
    rid = create(partners, cipher)["id"]
    with partners() as uow:
        handlers.apply_agreement_terminated(
            uow,
            produced.agreement_terminated(
                "yayasan-karunia-insani", NOW.date(), id="pks-yayasan-karunia-insani"
            ),
        )
        uow.commit()
    with pytest.raises(NotEligible) as caught:
        move(partners, KARUNIA, rid, "accept")
    assert "perjanjian" in caught.value.detail
    # the day before the termination it was still valid
    assert move(partners, KARUNIA, rid, "accept", now=NOW - timedelta(days=1))["status"] == (
        "accepted"
    )


def test_a_termination_before_its_signing_is_not_undone_by_the_signing(partners, cipher):
    terminated = produced.agreement_terminated("yayasan-kipas", date(2026, 1, 1), id="pks-new")
    with partners() as uow:
        handlers.apply_agreement_terminated(uow, terminated)
        handlers.apply_agreement(uow, agreement("yayasan-kipas", agreement_id="pks-new"))
        uow.commit()
    with partners() as uow:
        view = handlers._partner_view(uow, "yayasan-kipas")
    assert (date(2026, 1, 1), date(2025, 12, 31)) not in view.agreements
    assert (date(2023, 5, 30), date(2025, 12, 31)) in view.agreements


# --- transfer -------------------------------------------------------------------------


def test_transfer_ends_the_referral_and_opens_a_linked_one_at_another_partner(partners, cipher):
    rid = create(partners, cipher)["id"]
    move(partners, KARUNIA, rid, "accept")
    move(partners, KARUNIA, rid, "admit")
    with pytest.raises(NotEligible):  # not to the partner it is at
        move(partners, OFFICER, rid, "transfer", transfer_body("yayasan-karunia-insani"))
    moved = move(
        partners,
        OFFICER,
        rid,
        "transfer",
        transfer_body("yayasan-kipas", "dekat rumah", service_type="outpatient"),
    )
    assert moved["status"] == "transferred"
    successor = moved["transferred_to"]
    assert successor["status"] == "requested"
    assert successor["partner_id"] == "yayasan-kipas"
    assert successor["service_type"] == "outpatient"
    assert successor["transferred_from_id"] == successor["previous_referral_id"] == rid
    assert moved["transferred_to_id"] == successor["id"]
    assert successor["client"]["id"] == moved["client"]["id"]
    assert successor["client"]["previous_referrals"] == 1
    transferred = events(partners, "referral_transferred")[0]["data"]
    assert transferred["transferred_to_id"] == successor["id"]
    assert transferred["to_partner_id"] == "yayasan-kipas"
    assert "dekat rumah" not in json.dumps(events(partners))
    # the new partner answers the new referral; the old partner cannot see it
    assert move(partners, KIPAS, successor["id"], "accept")["status"] == "accepted"
    with pytest.raises(NotFound):
        move(partners, KARUNIA, successor["id"], "admit")


def test_a_returning_client_is_linked_to_earlier_episodes(partners, cipher):
    first = create(partners, cipher)
    move(partners, KARUNIA, first["id"], "reject", {"reason": "capacity_full"})
    second = create(partners, cipher, partner_id="yayasan-kipas", now=NOW + timedelta(days=1))
    assert second["client"]["id"] == first["client"]["id"]
    assert second["previous_referral_id"] == first["id"]
    assert second["client"]["previous_referrals"] == 1
    with partners() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Client)) == 1
        staff_view = handlers.get_referral(uow, cipher, OFFICER, second["id"])
        partner_view = handlers.get_referral(uow, cipher, KIPAS, second["id"])
    assert [e["id"] for e in staff_view["episodes"]] == [first["id"], second["id"]]
    # a partner sees only the episodes it received
    assert [e["id"] for e in partner_view["episodes"]] == [second["id"]]


# --- privacy and the audit log --------------------------------------------------------


def test_identity_only_for_staff_and_the_addressed_partner_and_every_read_audited(partners, cipher):
    rid = create(partners, cipher)["id"]
    with partners() as uow:
        read = handlers.get_referral(uow, cipher, KARUNIA, rid, "penerimaan klien", NOW)
        uow.commit()
    assert read["client"]["identity"] == {
        "nik": NIK_F,
        "name": NAME,
        "phone": PHONE,
        "birth_date": "1995-03-05",
    }
    for other in (KIPAS, {"role": "partner", "key_id": "x", "partner_id": None}, "partner:x"):
        with partners() as uow, pytest.raises(NotFound) as caught:
            handlers.get_referral(uow, cipher, other, rid)
        assert NAME not in caught.value.detail
        for query in (handlers.referral_history,):
            with partners() as uow, pytest.raises(NotFound):
                query(uow, other, rid)
        with pytest.raises(NotFound):
            move(partners, other, rid, "accept")
    with partners() as uow:
        handlers.get_referral(uow, cipher, ADMIN, rid)
        uow.commit()
    with partners() as uow:
        audit = handlers.list_audit(uow, ADMIN, {})["items"]
        with pytest.raises(Forbidden):
            handlers.list_audit(uow, OFFICER, {})
    assert [(a["actor"], a["referral_id"], a["purpose"]) for a in audit] == [
        ("admin:k-admin", rid, handlers.DEFAULT_PURPOSE),
        ("partner:k-karunia", rid, "penerimaan klien"),
    ]
    assert all(NAME not in json.dumps(a) for a in audit)


def test_lists_show_a_partner_only_its_own_referrals_without_identity(partners, cipher):
    mine = create(partners, cipher)["id"]
    theirs = create(
        partners, cipher, partner_id="yayasan-kipas", nik=NIK_M, sex="M", birth=date(1990, 8, 17)
    )["id"]
    with partners() as uow:
        assert [r["id"] for r in handlers.list_referrals(uow, KARUNIA, {})["items"]] == [mine]
        assert [r["id"] for r in handlers.list_referrals(uow, KIPAS, {})["items"]] == [theirs]
        staff = handlers.list_referrals(uow, OFFICER, {})["items"]
        assert {r["id"] for r in staff} == {mine, theirs}
        with pytest.raises(NotFound):
            handlers.list_referrals(uow, KARUNIA, {"partner_id": "yayasan-kipas"})
        assert "identity" not in json.dumps(staff)
        assert NAME not in json.dumps(staff)
    with partners() as uow:  # lists are not identity reads: nothing audited
        assert uow.session.scalar(select(func.count()).select_from(AccessAudit)) == 0


def test_list_pages_with_a_cursor_and_filters(partners, cipher):
    ids = [
        create(partners, cipher, now=NOW + timedelta(minutes=n), nik=f"17710145039500{n:02d}")["id"]
        for n in range(1, 6)
    ]
    move(partners, KARUNIA, ids[0], "accept")
    with partners() as uow:
        first = handlers.list_referrals(uow, OFFICER, {"limit": 2})
        second = handlers.list_referrals(uow, OFFICER, {"limit": 2, "cursor": first["next_cursor"]})
        third = handlers.list_referrals(uow, OFFICER, {"limit": 2, "cursor": second["next_cursor"]})
        accepted = handlers.list_referrals(uow, OFFICER, {"status": "accepted"})
    pages = [r["id"] for page in (first, second, third) for r in page["items"]]
    assert pages == ids[::-1]
    assert third["next_cursor"] is None
    assert [r["id"] for r in accepted["items"]] == [ids[0]]


def test_list_filters_by_several_statuses_and_a_window_of_last_change(partners, cipher):
    from bersinar.contracts.referrals import ReferralSearch

    ids = [
        create(partners, cipher, now=NOW + timedelta(hours=n), nik=f"17710145039500{n:02d}")["id"]
        for n in range(1, 4)
    ]
    move(partners, KARUNIA, ids[0], "accept", now=NOW + timedelta(days=2))
    move(partners, KARUNIA, ids[1], "reject", {"reason": "capacity_full"}, NOW + timedelta(days=3))

    def listed(**params):
        with partners() as uow:
            filters = ReferralSearch().load(params)
            return [r["id"] for r in handlers.list_referrals(uow, OFFICER, filters)["items"]]

    assert listed(statuses=["accepted", "rejected"]) == [ids[1], ids[0]]
    day = NOW + timedelta(days=2)
    assert listed(updated_from=day.isoformat()) == [ids[1], ids[0]]
    assert listed(updated_before=day.isoformat()) == [ids[2]]
    window = {
        "updated_from": day.isoformat(),
        "updated_before": (day + timedelta(days=1)).isoformat(),
    }
    assert listed(**window) == [ids[0]]
    with partners() as uow:  # another partner's operator sees none of them
        assert handlers.list_referrals(uow, KIPAS, ReferralSearch().load(window))["items"] == []


def test_a_referral_without_identity_to_whoever_may_see_it_and_nothing_audited(partners, cipher):
    rid = create(partners, cipher)["id"]
    with partners() as uow:
        seen = handlers.referral_overview(uow, KARUNIA, rid)
        assert seen["id"] == rid and seen["partner_id"] == "yayasan-karunia-insani"
        assert "identity" not in seen["client"] and NAME not in json.dumps(seen)
        assert handlers.referral_overview(uow, OFFICER, rid)["status"] == "requested"
        with pytest.raises(NotFound):
            handlers.referral_overview(uow, KIPAS, rid)
    with partners() as uow:
        assert uow.session.scalar(select(func.count()).select_from(AccessAudit)) == 0


def test_a_national_system_follows_every_referral_without_its_client(partners, cipher):
    """States, partner, service and coded reasons, read de-identified: no client, no link
    between one person's episodes, no transition author or note; identity never."""
    first = create(partners, cipher)["id"]
    move(partners, KARUNIA, first, "reject", {"reason": "capacity_full", "note": f"{NAME} x"})
    second = create(partners, cipher)["id"]  # the same client, referred again
    with partners() as uow:
        listed = handlers.list_referrals(uow, NATIONAL, {"limit": 50})["items"]
        overview = handlers.referral_overview(uow, NATIONAL, first)
        history = handlers.referral_history(uow, NATIONAL, first)["items"]
        mine = handlers.list_referrals(uow, NATIONAL, {"partner_id": "yayasan-karunia-insani"})
        with pytest.raises(Forbidden):
            handlers.list_referrals(uow, NATIONAL, {"client_id": overview["id"]})
        with pytest.raises(NotFound):
            handlers.get_referral(uow, cipher, NATIONAL, first)
    assert {r["id"] for r in listed} == {first, second} == {r["id"] for r in mine["items"]}
    assert overview["status"] == "rejected" and overview["rejection_reason"] == "capacity_full"
    assert [h["to_status"] for h in history] == ["requested", "rejected"]
    assert history[1]["reason"] == "capacity_full"
    served = json.dumps([listed, overview, history])
    assert NAME not in served and NIK_F not in served
    assert all(r["client"] is None and r["previous_referral_id"] is None for r in listed)
    assert all(h["actor"] is None and h["note"] is None for h in history)
    with partners() as uow:  # a Bulk Data export's key: the client, keyed by it alone
        keyed = handlers.list_referrals(uow, NATIONAL, {"pseudonym_key": "ab" * 32})["items"]
        other = handlers.list_referrals(uow, OFFICER, {"pseudonym_key": "cd" * 32})["items"]
        real = handlers.referral_overview(uow, OFFICER, first)["client"]["id"]
    assert len({r["client"]["id"] for r in keyed}) == 1  # one person, within one export
    assert {r["client"]["id"] for r in keyed}.isdisjoint({r["client"]["id"] for r in other})
    assert real not in json.dumps([keyed, other])


# --- the response deadline ------------------------------------------------------------


def test_overdue_is_emitted_once_per_referral_and_not_for_an_answered_one(partners, cipher):
    policy = DeadlinePolicy.from_config(48, "court=24")
    court = create(partners, cipher, policy=policy, source="court")["id"]
    tat = create(partners, cipher, policy=policy, nik="1771014503950013")["id"]
    answered = create(partners, cipher, policy=policy, nik="1771014503950014")["id"]
    move(partners, KARUNIA, answered, "reject", {"reason": "not_eligible"})

    def scan(hours):
        with partners() as uow:
            emitted = handlers.emit_overdue_responses(uow, NOW + timedelta(hours=hours))
            uow.commit()
        return emitted

    assert scan(23.9) == 0
    assert scan(24) == 1  # court: 24 h
    assert scan(30) == 0
    assert scan(48) == 1  # TAT: the default 48 h
    assert scan(500) == 0
    overdue = events(partners, "referral_response_overdue")
    assert [e["data"]["referral_id"] for e in overdue] == [court, tat]
    assert overdue[0]["data"]["hours_overdue"] == 0
    with partners() as uow:
        read = handlers.list_referrals(uow, OFFICER, {})["items"]
    assert {r["id"]: r["response_overdue"] for r in read} == {
        court: True,
        tat: True,
        answered: False,
    }
    # an overdue request can still be answered
    assert move(partners, KARUNIA, court, "accept")["status"] == "accepted"


# --- matching and occupancy -----------------------------------------------------------


def test_match_ranks_the_clients_area_first_then_free_places(partners, cipher):
    with partners() as uow:
        handlers.apply_partner_snapshot(
            uow,
            snapshot(
                "yayasan-pesona",
                services=[("inpatient", 9, "-")],
                area="Kota Bengkulu",
            ),
        )
        handlers.apply_agreement(uow, agreement("yayasan-pesona"))
        handlers.apply_partner_snapshot(uow, snapshot("lapas-tutup", status="inactive"))
        handlers.apply_agreement(uow, agreement("lapas-tutup"))
        handlers.apply_partner_snapshot(uow, snapshot("tanpa-pks", area="Rejang Lebong"))
        uow.commit()

    def match(**params):
        with partners() as uow:
            return [m["partner_id"] for m in handlers.match_partners(uow, params, NOW)]

    assert match(sex="F", service_type="inpatient", kabupaten_kota="Rejang Lebong") == [
        "yayasan-karunia-insani",
        "yayasan-pesona",
        "yayasan-kipas",
    ]
    assert match(sex="F", service_type="inpatient", kabupaten_kota="kota bengkulu") == [
        "yayasan-pesona",
        "yayasan-kipas",
        "yayasan-karunia-insani",
    ]
    assert match(sex="M", service_type="inpatient") == ["yayasan-pesona", "yayasan-kipas"]
    assert match(sex="M", service_type="aftercare") == []
    # a full partner drops off the list
    for n in range(1, 3):
        rid = create(partners, cipher, nik=f"17710145039500{n:02d}")["id"]
        move(partners, KARUNIA, rid, "accept")
    assert "yayasan-karunia-insani" not in match(sex="F", service_type="inpatient")
    with partners() as uow:
        rows = handlers.occupancy(uow)
    assert ("yayasan-karunia-insani", "inpatient", 2, 2) in rows


def test_an_older_partner_snapshot_changes_nothing(partners):
    with partners() as uow:
        handlers.apply_partner_snapshot(uow, snapshot("yayasan-kipas", version=3, area="Seluma"))
        handlers.apply_partner_snapshot(uow, snapshot("yayasan-kipas", version=2, area="Kaur"))
        uow.commit()
    with partners() as uow:
        view = uow.session.execute(
            text(
                "SELECT kabupaten_kota, version FROM partner_view WHERE partner_id='yayasan-kipas'"
            )
        ).one()
    assert tuple(view) == ("Seluma", 3)


# --- key rotation ---------------------------------------------------------------------


def test_rekey_in_batches_until_none_is_left(partners):
    old = Fernet.generate_key().decode()
    new = Fernet.generate_key().decode()
    before = ClientCipher(f"k1:{old}", HMAC_KEY)
    for n in range(1, 8):
        create(partners, before, nik=f"17710145039500{n:02d}")
    after = ClientCipher(f"k2:{new},k1:{old}", HMAC_KEY)
    with partners() as uow:
        assert handlers.clients_to_rekey(uow, after) == 7
    done, cursor = 0, ""
    while True:
        with partners() as uow:
            count, last, duplicates = handlers.rekey_clients(uow, after, cursor, limit=3)
            uow.commit()
        assert duplicates == []
        if last is None:
            break
        done, cursor = done + count, last
    assert done == 7
    only_new = ClientCipher(f"k2:{new}", HMAC_KEY)
    with partners() as uow:
        assert handlers.clients_to_rekey(uow, after) == 0
        clients = uow.session.scalars(select(Client)).all()
        assert {c.key_id for c in clients} == {"k2"}
        assert {only_new.decrypt(c.name_encrypted) for c in clients} == {NAME}
        assert {only_new.decrypt(c.phone_encrypted) for c in clients} == {PHONE}
        # the NIK digest is independent of the encryption key: the client is still found
        first = uow.session.scalar(
            select(Referral.id).join(Client).where(Client.id == Referral.client_id).limit(1)
        )
    again = create(partners, only_new, nik="1771014503950001", partner_id="yayasan-kipas")
    with partners() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Client)) == 7
    assert again["client"]["previous_referrals"] == 1
    assert first


@pytest.mark.parametrize("referral_id", ["a\x00b", "x" * 65, "abc\n", ""])
def test_an_id_no_referral_can_have_is_not_found_without_a_query(partners, cipher, referral_id):
    with partners() as uow, pytest.raises(NotFound):
        handlers.get_referral(uow, cipher, ADMIN, referral_id)
    with pytest.raises(NotFound):
        move(partners, ADMIN, referral_id, "accept")


def test_a_request_made_again_with_its_request_key_returns_the_first_referral(partners, cipher):
    """A client retrying after a 503 with its Idempotency-Key, or the broker delivering
    the same create RPC twice, must not refer the client twice."""

    def create_with_key(command, key):
        with partners() as uow:
            made = handlers.create_referral(uow, cipher, command, OFFICER, NOW, None, key)
            uow.commit()
        return made

    first = create_with_key(body(), "k-officer:retry-7")
    again = create_with_key(body(), "k-officer:retry-7")
    other = create_with_key(body(), "k-officer:retry-8")  # another request of the same client
    assert again["id"] == first["id"]
    assert other["id"] != first["id"]
    with partners() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Referral)) == 2
    assert len(events(partners, "referral_requested")) == 2
    with pytest.raises(Conflict) as refused:
        create_with_key(body(partner_id="yayasan-kipas"), "k-officer:retry-7")
    assert refused.value.code == "IDEMPOTENCY_KEY_REUSED"


# --- the surat rujukan: one numbered letter per referral ---------------------------------

NUMBERING = LetterNumbering.from_config("")


def letter(factory, cipher, actor, referral_id, now=NOW, numbering=NUMBERING):
    with factory() as uow:
        result = handlers.referral_letter(uow, cipher, actor, referral_id, numbering, now)
        uow.commit()
    return result


def test_a_letter_is_numbered_once_and_every_read_of_it_is_audited(partners, cipher):
    first = create(partners, cipher)["id"]
    second = create(
        partners, cipher, nik=NIK_M, sex="M", birth=date(1990, 8, 17), partner_id="yayasan-kipas"
    )["id"]

    issued = letter(partners, cipher, OFFICER, first)
    assert issued["letter"]["number"] == "R/1/VI/KA/RH.00/2026/BNNP"
    assert issued["letter"]["issued_by"] == "officer:k-officer"
    assert issued["client"]["identity"]["name"] == NAME
    # a reprint by the receiving partner, a month on, keeps the number and its issue
    again = letter(partners, cipher, KARUNIA, first, now=NOW + timedelta(days=30))
    assert again["letter"] == issued["letter"]
    assert letter(partners, cipher, ADMIN, second)["letter"]["number"] == (
        "R/2/VI/KA/RH.00/2026/BNNP"
    )
    # the sequence starts again in a new year (reckoned in Bengkulu: 1 January, 00:30 WIB)
    new_year = datetime(2026, 12, 31, 17, 30, tzinfo=UTC)
    third = create(partners, cipher, nik="1771014503950020", now=new_year)["id"]
    assert letter(partners, cipher, OFFICER, third, now=new_year)["letter"]["number"] == (
        "R/1/I/KA/RH.00/2027/BNNP"
    )

    # another partner meets a referral that does not exist, and leaves nothing behind
    with pytest.raises(NotFound):
        letter(partners, cipher, KIPAS, first)
    with partners() as uow:
        reads = uow.session.execute(
            select(AccessAudit.actor, AccessAudit.purpose)
            .where(AccessAudit.referral_id == first)
            .order_by(AccessAudit.id)
        ).all()
        letters = uow.session.execute(
            select(ReferralLetter.year, ReferralLetter.seq, ReferralLetter.referral_id)
        ).all()
    assert [tuple(r) for r in reads] == [
        ("officer:k-officer", "cetak surat rujukan R/1/VI/KA/RH.00/2026/BNNP"),
        ("partner:k-karunia", "cetak surat rujukan R/1/VI/KA/RH.00/2026/BNNP"),
    ]
    assert sorted(tuple(x) for x in letters) == [
        (2026, 1, first),
        (2026, 2, second),
        (2027, 1, third),
    ]


def test_letters_issued_at_once_never_share_a_number(partners, cipher):
    made = [create(partners, cipher, nik=f"17710145039500{n:02d}")["id"] for n in range(30, 42)]
    pool = eventlet.GreenPool(12)
    # every referral asked for twice at the same moment, by two officers
    numbers = list(
        pool.imap(
            lambda referral_id: letter(partners, cipher, OFFICER, referral_id)["letter"]["number"],
            made + made,
        )
    )
    assert numbers[: len(made)] == numbers[len(made) :]
    assert sorted(numbers[: len(made)]) == sorted(
        f"R/{seq}/VI/KA/RH.00/2026/BNNP" for seq in range(1, len(made) + 1)
    )
    with partners() as uow:
        assert uow.session.scalar(select(func.count()).select_from(ReferralLetter)) == len(made)


def test_a_letters_short_code_opens_its_referral_for_those_who_may_see_it(partners, cipher):
    rid = create(partners, cipher)["id"]
    code = letter(partners, cipher, OFFICER, rid)["letter"]["short_code"]
    assert code == short_code(rid)

    def find(actor, typed):
        with partners() as uow:
            return handlers.referral_by_code(uow, actor, typed)

    assert find(KARUNIA, code) == rid
    assert find(OFFICER, code.lower().replace("-", " ")) == rid
    for actor, typed in ((KIPAS, code), (KARUNIA, "0000-0000-0000"), (KARUNIA, "%%%%")):
        with pytest.raises(NotFound):
            find(actor, typed)
