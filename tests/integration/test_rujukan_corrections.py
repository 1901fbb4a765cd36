"""An admin's corrections in rujukan, on its migrated database: undoing a referral's last
transition (back to which status, what is cleared, what is refused and then left as it
was, the capacity of a place taken again, a transfer and its new referral) and
correcting a client's identity (sealed and indexed again, age groups, history, audit,
events without identity, a NIK of another client, nothing changed)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from bersinar.errors import CapacityFull, Forbidden, ValidationFailed
from harness.data import transfer_body
from services.rujukan import handlers
from services.rujukan.models import AccessAudit, Client, ClientNameToken
from tests.integration import test_rujukan_lifecycle as lifecycle
from tests.integration.test_rujukan_lifecycle import (
    ADMIN,
    KARUNIA,
    KIPAS,
    NAME,
    NIK_F,
    NIK_M,
    NOW,
    OFFICER,
    create,
    events,
    move,
    state,
)

# the lifecycle tests' fixtures: a cipher, the database, the two partners with their PKS
cipher, factory, partners = lifecycle.cipher, lifecycle.factory, lifecycle.partners

LATER = NOW + timedelta(hours=2)
REASON = "Salah pilih rujukan saat mencatat."


def undo(factory, referral_id, expected, actor=ADMIN, reason=REASON, now=LATER):
    with factory() as uow:
        result = handlers.undo_transition(
            uow, actor, referral_id, {"expected_status": expected, "reason": reason}, now
        )
        uow.commit()
    return result


def correct(factory, cipher, client_id, actor=ADMIN, now=LATER, **fields):
    with factory() as uow:
        result = handlers.correct_client(
            uow, cipher, actor, client_id, {"reason": "Salah ketik.", **fields}, now
        )
        uow.commit()
    return result


def history(factory, referral_id, actor=ADMIN):
    with factory() as uow:
        return handlers.referral_history(uow, actor, referral_id)["items"]


def test_an_admission_undone_returns_to_accepted_with_history_and_an_event(partners, cipher):
    rid = create(partners, cipher)["id"]
    move(partners, KARUNIA, rid, "accept")
    admitted = move(partners, KARUNIA, rid, "admit")
    assert admitted["admitted_at"] is not None

    back = undo(partners, rid, "admitted")
    assert (back["status"], back["undone_status"], back["admitted_at"]) == (
        "accepted",
        "admitted",
        None,
    )
    assert back["responded_at"] == admitted["responded_at"]  # the acceptance stays
    last = history(partners, rid)[-1]
    assert (last["from_status"], last["to_status"], last["reason"], last["note"]) == (
        "admitted",
        "accepted",
        "transition_undone",
        REASON,
    )
    assert last["actor"] == "admin:k-admin"
    (told,) = events(partners, "referral_transition_undone")
    assert (told["data"]["from_status"], told["data"]["to_status"]) == ("admitted", "accepted")
    assert told["data"]["admitted_at"] is None
    assert REASON not in json.dumps(events(partners))  # free text never in an event

    # and again: the acceptance is undone next, then nothing is left
    assert undo(partners, rid, "accepted")["status"] == "requested"
    assert history(partners, rid)[-1]["to_status"] == "requested"
    before = state(partners)
    with pytest.raises(Exception) as nothing:
        undo(partners, rid, "requested")
    assert (nothing.value.code, nothing.value.status) == ("NOTHING_TO_UNDO", 409)
    assert state(partners) == before
    # the partner can answer it again
    assert move(partners, KARUNIA, rid, "accept")["status"] == "accepted"


def test_a_rejection_undone_clears_its_reason(partners, cipher):
    rid = create(partners, cipher)["id"]
    move(partners, KARUNIA, rid, "reject", {"reason": "capacity_full"})
    back = undo(partners, rid, "rejected")
    assert (back["status"], back["rejection_reason"], back["ended_at"], back["responded_at"]) == (
        "requested",
        None,
        None,
        None,
    )


def test_refusals_leave_the_referral_as_it_was(partners, cipher):
    rid = create(partners, cipher)["id"]
    move(partners, KARUNIA, rid, "accept")
    before = state(partners)
    for actor in (OFFICER, KARUNIA):
        with pytest.raises(Forbidden):
            undo(partners, rid, "accepted", actor=actor)
    with pytest.raises(Exception) as hidden:  # another partner's: as if absent
        undo(partners, rid, "accepted", actor=KIPAS)
    assert hidden.value.code in ("FORBIDDEN", "NOT_FOUND")
    with pytest.raises(Exception) as moved:
        undo(partners, rid, "admitted")
    assert (moved.value.code, moved.value.status) == ("STATUS_CHANGED", 409)
    assert state(partners) == before


def test_undoing_a_cancellation_takes_the_place_again_only_if_one_is_free(partners, cipher):
    # yayasan-karunia-insani: 2 inpatient places
    first = create(partners, cipher)["id"]
    move(partners, KARUNIA, first, "accept")
    move(partners, OFFICER, first, "cancel")
    for nik in ("1771014503950013", "1771014503950014"):
        other = create(partners, cipher, nik=nik)["id"]
        move(partners, KARUNIA, other, "accept")
    before = state(partners)
    with pytest.raises(CapacityFull):
        undo(partners, first, "cancelled")
    assert state(partners) == before
    move(partners, OFFICER, other, "cancel")  # a place is free again
    back = undo(partners, first, "cancelled")
    assert (back["status"], back["ended_at"]) == ("accepted", None)


def test_a_transfer_is_undone_while_its_new_referral_is_unanswered(partners, cipher):
    rid = create(partners, cipher)["id"]
    move(partners, KARUNIA, rid, "accept")
    move(partners, KARUNIA, rid, "admit")
    moved = move(partners, OFFICER, rid, "transfer", transfer_body("yayasan-kipas"))
    successor = moved["transferred_to"]["id"]
    back = undo(partners, rid, "transferred")
    assert (back["status"], back["transferred_to_id"], back["ended_at"]) == ("admitted", None, None)
    with partners() as uow:
        new = handlers.referral_overview(uow, ADMIN, successor)
    assert new["status"] == "cancelled"
    assert history(partners, successor)[-1]["reason"] == "transition_undone"
    cancelled = events(partners, "referral_cancelled")[-1]["data"]
    assert (cancelled["referral_id"], cancelled["partner_id"]) == (successor, "yayasan-kipas")

    # once the new partner has answered, the transfer stays
    moved = move(partners, OFFICER, rid, "transfer", transfer_body("yayasan-kipas"))
    move(partners, KIPAS, moved["transferred_to"]["id"], "accept")
    before = state(partners)
    with pytest.raises(Exception) as refused:
        undo(partners, rid, "transferred")
    assert (refused.value.code, refused.value.status) == ("UNDO_NOT_POSSIBLE", 409)
    assert state(partners) == before


def test_an_identity_correction_reseals_reindexes_and_tells_without_identity(partners, cipher):
    # a woman's referral recorded with a man's NIK, birth date and sex by mistake
    first = create(
        partners,
        cipher,
        partner_id="yayasan-kipas",
        nik=NIK_M,
        sex="M",
        birth=date(1990, 8, 17),
    )
    client_id = first["client"]["id"]
    assert first["client"]["age_group"] == "35-44"
    corrected = correct(
        partners,
        cipher,
        client_id,
        nik="1771014503050012",  # woman born 5 Mar 2005: 21 on the day of the referral
        birth_date=date(2005, 3, 5),
        sex="F",
        name="Siti Rahma Wati",
    )
    assert corrected["changed"] == ["nik", "name", "birth_date", "sex"]
    assert corrected["referrals_affected"] == [first["id"]]
    with partners() as uow:
        client = uow.session.get(Client, client_id)
        assert cipher.decrypt(client.nik_encrypted) == "1771014503050012"
        assert cipher.decrypt(client.name_encrypted) == "Siti Rahma Wati"
        assert client.nik_digest == cipher.nik_digests("1771014503050012")[cipher.current_hmac_kid]
        assert (client.sex, client.birth_date) == ("F", date(2005, 3, 5))
        tokens = set(
            uow.session.scalars(
                select(ClientNameToken.digest).where(ClientNameToken.client_id == client_id)
            )
        )
        assert tokens == set(cipher.name_digests("Siti Rahma Wati"))
        audit = uow.session.scalars(
            select(AccessAudit).where(AccessAudit.client_id == client_id)
        ).all()
        assert [a.purpose for a in audit] == ["koreksi identitas: Salah ketik."]
        assert audit[0].actor == "admin:k-admin"
        # found by the new NIK and name, not by the old
        found = handlers.search_clients(uow, cipher, ADMIN, {"name": "rahma"})["items"]
        assert [c["id"] for c in found] == [client_id]
        assert handlers.search_clients(uow, cipher, ADMIN, {"nik": NIK_M})["total"] == 0
    with partners() as uow:
        overview = handlers.referral_overview(uow, ADMIN, first["id"])
    assert overview["client"] == {**overview["client"], "sex": "F", "age_group": "18-24"}
    last = history(partners, first["id"])[-1]
    assert (last["reason"], last["note"], last["from_status"], last["to_status"]) == (
        "identity_corrected",
        "Salah ketik.",
        "requested",
        "requested",
    )
    (told,) = events(partners, "client_corrected")
    assert (told["data"]["sex"], told["data"]["age_group"]) == ("F", "18-24")
    assert told["data"]["sex_changed"] is told["data"]["age_group_changed"] is True
    text = json.dumps(events(partners))
    for secret in ("1771014503050012", "Siti Rahma", "2005-03-05", NIK_M, "Salah ketik"):
        assert secret not in text


def test_a_correction_is_refused_for_another_clients_nik_a_bad_nik_or_nothing_new(partners, cipher):
    first = create(partners, cipher)
    create(
        partners, cipher, partner_id="yayasan-kipas", nik=NIK_M, sex="M", birth=date(1990, 8, 17)
    )
    client_id = first["client"]["id"]
    before = state(partners)
    with pytest.raises(Exception) as taken:
        correct(partners, cipher, client_id, nik=NIK_M, sex="M", birth_date=date(1990, 8, 17))
    assert (taken.value.code, taken.value.status, list(taken.value.errors)) == (
        "NIK_IN_USE",
        409,
        ["nik"],
    )
    with pytest.raises(ValidationFailed):  # the NIK no longer agrees with the sex
        correct(partners, cipher, client_id, sex="M")
    with pytest.raises(Exception) as same:
        correct(partners, cipher, client_id, name=NAME, nik=NIK_F)
    assert (same.value.code, same.value.status) == ("NOTHING_CHANGED", 409)
    for actor in (OFFICER, KARUNIA):
        with pytest.raises(Forbidden):
            correct(partners, cipher, client_id, actor=actor, name="Siti")
    with pytest.raises(Exception) as unknown:
        correct(partners, cipher, "00000000-0000-4000-8000-000000000000", name="Siti")
    assert (unknown.value.code, unknown.value.status) == ("NOT_FOUND", 404)
    assert state(partners) == before
    with partners() as uow:
        assert uow.session.query(AccessAudit).count() == 0


def test_an_ending_undone_drops_its_summary_and_its_follow_up(partners, cipher):
    rid = create(partners, cipher)["id"]
    move(partners, KARUNIA, rid, "accept")
    move(partners, KARUNIA, rid, "admit")
    follow_up = (NOW + timedelta(days=10)).date()
    summary = {"outcome": "improved", "reasons": ["program_completed"], "follow_up_on": follow_up}
    move(partners, KARUNIA, rid, "complete", {"discharge": summary})

    back = undo(partners, rid, "completed")
    assert back["status"] == "admitted"
    with partners() as uow:
        read = handlers.get_referral(uow, cipher, ADMIN, rid, None, LATER)
        # the day comes: no reminder of an ending that was undone
        assert handlers.emit_follow_up_reminders(uow, NOW + timedelta(days=11)) == 0
        uow.commit()
    assert read["discharge"] is None
    assert events(partners, "referral_follow_up_due") == []
    # care ends again, with the summary it ends with
    again = {"outcome": "unchanged", "reasons": ["self_discharge"]}
    move(partners, KARUNIA, rid, "drop_out", {"discharge": again, "note": "Pulang."})
    with partners() as uow:
        read = handlers.get_referral(uow, cipher, ADMIN, rid, None, LATER)
        uow.commit()
    assert (read["discharge"]["outcome"], read["discharge"]["follow_up_on"]) == ("unchanged", None)
