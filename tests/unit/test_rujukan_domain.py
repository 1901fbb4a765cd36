"""Referral rules of rujukan: NIK, age group, consent, eligibility, capacity, lifecycle."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bersinar import codes
from bersinar.directory import PartnerTerms
from bersinar.errors import (
    CapacityFull,
    ConsentRequired,
    Forbidden,
    InvalidTransition,
    NotEligible,
    ValidationFailed,
)
from services.rujukan.domain import (
    TRANSITIONS,
    Actor,
    admission_instant,
    age_group,
    check_capacity,
    check_consent,
    check_eligible,
    check_guardian,
    check_new_consent,
    check_nik,
    identity_hidden,
    next_status,
    withdrawal_day,
)

# Hand-made NIKs: province 17 (Bengkulu), regency, district, DDMMYY (+40 for women), serial.
MALE_NIK = "1771011708900001"  # man born 17 Aug 1990
MALE_BIRTH = date(1990, 8, 17)
FEMALE_NIK = "1702034503950012"  # woman born 5 Mar 1995: day 05 + 40 = 45
FEMALE_BIRTH = date(1995, 3, 5)


def nik_errors(nik: str, birth_date: date, sex: str) -> list[str]:
    with pytest.raises(ValidationFailed) as caught:
        check_nik(nik, birth_date, sex)
    assert caught.value.code == "VALIDATION_ERROR"
    assert caught.value.status == 422
    return caught.value.errors["client"]["nik"]


# --- check_nik -------------------------------------------------------------------------


def test_valid_male_nik_is_accepted():
    check_nik(MALE_NIK, MALE_BIRTH, "M")


def test_valid_female_nik_has_forty_added_to_the_day_and_is_accepted():
    check_nik(FEMALE_NIK, FEMALE_BIRTH, "F")


def test_female_on_the_last_day_of_a_month_is_accepted():
    # 31 + 40 = 71: the largest day a woman's NIK can hold.
    check_nik("1771017112000003", date(2000, 12, 31), "F")


@pytest.mark.parametrize(
    "nik",
    [
        "177101170890001",  # 15 digits
        "17710117089000011",  # 17 digits
        "17710117089O0001",  # letter O instead of zero
        "1771 01170890001",  # a space
        "",
    ],
)
def test_nik_that_is_not_sixteen_digits_is_refused(nik):
    errors = nik_errors(nik, MALE_BIRTH, "M")
    assert len(errors) == 1


def test_unknown_province_code_is_refused():
    errors = nik_errors("10" + MALE_NIK[2:], MALE_BIRTH, "M")
    assert len(errors) == 1
    assert "provinsi" in errors[0].lower()


@pytest.mark.parametrize(
    "nik,sex",
    [
        ("1771013102900001", "M"),  # 31 February
        ("1771010013900001", "M"),  # month 13
        ("1771010008900001", "M"),  # day 00
        ("1771017202900001", "F"),  # woman, 72 - 40 = 32 February
        ("1771013508900001", "M"),  # day 35: neither a man's day nor a woman's
    ],
)
def test_impossible_birth_date_in_nik_is_refused(nik, sex):
    errors = nik_errors(nik, MALE_BIRTH, sex)
    assert len(errors) == 1
    assert "tanggal lahir" in errors[0].lower()


@pytest.mark.parametrize(
    "birth_date",
    [
        date(1990, 8, 18),  # another day
        date(1990, 9, 17),  # another month
        date(1980, 8, 17),  # another year
    ],
)
def test_nik_that_disagrees_with_birth_date_is_refused(birth_date):
    errors = nik_errors(MALE_NIK, birth_date, "M")
    assert len(errors) == 1
    assert "tanggal lahir" in errors[0].lower()


def test_male_nik_given_as_female_is_refused():
    errors = nik_errors(MALE_NIK, MALE_BIRTH, "F")
    assert len(errors) == 1
    assert "jenis kelamin" in errors[0].lower()


def test_female_nik_given_as_male_is_refused():
    errors = nik_errors(FEMALE_NIK, FEMALE_BIRTH, "M")
    assert len(errors) == 1
    assert "jenis kelamin" in errors[0].lower()


def test_female_nik_read_with_the_undecoded_day_is_a_date_mismatch():
    # The birth day written raw (45) is not the birth day: only 45 - 40 = 5 is.
    with pytest.raises(ValidationFailed):
        check_nik(FEMALE_NIK, date(1995, 3, 15), "F")


def test_serial_0000_is_refused():
    errors = nik_errors(MALE_NIK[:12] + "0000", MALE_BIRTH, "M")
    assert len(errors) == 1
    assert "urut" in errors[0].lower()


def test_several_faults_are_reported_together():
    errors = nik_errors("99" + MALE_NIK[2:12] + "0000", MALE_BIRTH, "F")
    assert len(errors) == 3  # province, sex, serial


# --- age_group -------------------------------------------------------------------------

TODAY = date(2026, 6, 15)


@pytest.mark.parametrize(
    "birth_date,expected",
    [
        (date(2008, 6, 16), "0-17"),  # turns 18 tomorrow
        (date(2008, 6, 15), "18-24"),  # 18 today
        (date(2001, 6, 16), "18-24"),  # 24, turns 25 tomorrow
        (date(2001, 6, 15), "25-34"),  # 25 today
        (date(1991, 6, 16), "25-34"),  # 34
        (date(1991, 6, 15), "35-44"),  # 35 today
        (date(1981, 6, 16), "35-44"),  # 44
        (date(1981, 6, 15), "45+"),  # 45 today
        (date(1950, 1, 1), "45+"),
        (date(2012, 1, 1), "0-17"),
    ],
)
def test_age_group_boundaries(birth_date, expected):
    assert age_group(birth_date, TODAY) == expected


def test_birthday_later_this_year_is_not_yet_counted():
    # 2026 - 2008 = 18, but the birthday in December has not come: still 17.
    assert age_group(date(2008, 12, 1), TODAY) == "0-17"
    assert age_group(date(2008, 12, 1), date(2026, 12, 1)) == "18-24"


# --- check_consent ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "consent", [None, {}, {"given": False}, {"given_by": "client"}, {"given": "true"}]
)
def test_referral_without_recorded_consent_is_refused(consent):
    with pytest.raises(ConsentRequired) as caught:
        check_consent(consent)
    assert caught.value.code == "CONSENT_REQUIRED"


def test_given_consent_is_accepted():
    check_consent({"given": True, "given_by": "guardian"})


# --- check_eligible and check_capacity -------------------------------------------------

PKS = (date(2023, 5, 30), date(2028, 5, 29))


def partner(**changes) -> PartnerTerms:
    values = dict(
        partner_id="yayasan-kipas",
        status="active",
        sex_served="all",
        capacities={"inpatient": 10, "outpatient": 5},
        agreements=(PKS,),
    )
    values.update(changes)
    return PartnerTerms(**values)


def not_eligible_reasons(view: PartnerTerms, sex: str, service_type: str, today: date) -> list[str]:
    with pytest.raises(NotEligible) as caught:
        check_eligible(view, sex, service_type, today)
    assert caught.value.code == "NOT_ELIGIBLE"
    return caught.value.errors["partner_id"]


@pytest.mark.parametrize("sex", ["M", "F"])
def test_active_partner_for_all_with_the_service_and_a_valid_agreement_is_eligible(sex):
    check_eligible(partner(), sex, "inpatient", TODAY)


def test_inactive_partner_is_not_eligible():
    assert len(not_eligible_reasons(partner(status="suspended"), "M", "inpatient", TODAY)) == 1


def test_female_only_partner_refuses_a_male_client():
    female_only = partner(sex_served="female")
    assert len(not_eligible_reasons(female_only, "M", "inpatient", TODAY)) == 1
    check_eligible(female_only, "F", "inpatient", TODAY)


def test_male_only_partner_refuses_a_female_client():
    male_only = partner(sex_served="male")
    assert len(not_eligible_reasons(male_only, "F", "inpatient", TODAY)) == 1
    check_eligible(male_only, "M", "inpatient", TODAY)


def test_service_type_not_offered_is_not_eligible():
    assert len(not_eligible_reasons(partner(), "M", "aftercare", TODAY)) == 1


def test_partner_without_an_agreement_is_not_eligible():
    assert len(not_eligible_reasons(partner(agreements=()), "M", "inpatient", TODAY)) == 1


@pytest.mark.parametrize("today", [date(2023, 5, 30), date(2028, 5, 29)])
def test_agreement_is_valid_on_its_first_and_last_day(today):
    check_eligible(partner(), "M", "inpatient", today)


@pytest.mark.parametrize("today", [date(2023, 5, 29), date(2028, 5, 30)])
def test_agreement_is_not_valid_the_day_before_or_after(today):
    assert len(not_eligible_reasons(partner(), "M", "inpatient", today)) == 1


def test_any_one_valid_agreement_is_enough():
    agreements = ((date(2018, 1, 1), date(2022, 12, 31)), (date(2026, 1, 1), date(2026, 12, 31)))
    check_eligible(partner(agreements=agreements), "M", "inpatient", TODAY)
    # ...and a gap between two agreements is not covered.
    assert not_eligible_reasons(partner(agreements=agreements), "M", "inpatient", date(2024, 6, 1))


def test_every_reason_is_reported_together():
    view = partner(status="inactive", sex_served="female", agreements=())
    reasons = not_eligible_reasons(view, "M", "aftercare", TODAY)
    assert len(reasons) == 4
    assert len(set(reasons)) == 4


def test_capacity_with_one_place_left_is_accepted():
    check_capacity(partner(), "inpatient", active=9)


@pytest.mark.parametrize("active", [10, 11])
def test_full_capacity_is_refused(active):
    with pytest.raises(CapacityFull) as caught:
        check_capacity(partner(), "inpatient", active=active)
    assert caught.value.code == "CAPACITY_FULL"
    assert caught.value.status == 409


def test_capacity_is_per_service_type():
    check_capacity(partner(), "inpatient", active=5)  # 5 of 10
    with pytest.raises(CapacityFull):
        check_capacity(partner(), "outpatient", active=5)  # 5 of 5


def test_service_not_offered_has_no_capacity():
    with pytest.raises(CapacityFull):
        check_capacity(partner(), "aftercare", active=0)


# --- next_status: the lifecycle of docs/architecture.md (after FHIR Task) ---------------

STATUSES = (
    "requested",
    "accepted",
    "rejected",
    "cancelled",
    "admitted",
    "completed",
    "dropped_out",
    "transferred",
)

# Written from the lifecycle diagram of docs/architecture.md, not from TRANSITIONS.
ALLOWED = {
    ("requested", "accept"): "accepted",
    ("requested", "reject"): "rejected",
    ("requested", "cancel"): "cancelled",
    ("accepted", "admit"): "admitted",
    ("accepted", "cancel"): "cancelled",
    ("admitted", "complete"): "completed",
    ("admitted", "drop_out"): "dropped_out",
    ("admitted", "transfer"): "transferred",
}
# The receiving partner owns the Task status; officers create, cancel and transfer.
OWNER = {
    "accept": "partner",
    "reject": "partner",
    "admit": "partner",
    "complete": "partner",
    "drop_out": "partner",
    "cancel": "officer",
    "transfer": "officer",
}
ACTIONS = tuple(OWNER)


def test_the_actions_are_those_of_the_design():
    assert set(TRANSITIONS) == set(ACTIONS)


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("action", ACTIONS)
def test_every_action_from_every_status(status, action):
    owner = OWNER[action]
    if (status, action) in ALLOWED:
        assert next_status(status, action, owner) == ALLOWED[status, action]
        assert next_status(status, action, "admin") == ALLOWED[status, action]
    else:
        for role in (owner, "admin"):
            with pytest.raises(InvalidTransition) as caught:
                next_status(status, action, role)
            assert caught.value.code == "INVALID_TRANSITION"
            assert caught.value.status == 409


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("action", ACTIONS)
def test_a_role_that_may_never_take_an_action_is_refused_by_role_in_any_state(status, action):
    others = {"partner", "officer", "national", "ops"} - {OWNER[action]}
    for role in sorted(others):
        with pytest.raises(Forbidden) as caught:
            next_status(status, action, role)
        assert (caught.value.code, caught.value.status) == ("FORBIDDEN", 403)


def test_the_shared_table_of_actors_is_the_design_s():
    assert codes.REFERRAL_ACTORS == OWNER
    for action, owner in OWNER.items():
        assert set(codes.referral_action_roles(action)) == {owner, "admin"}


def test_terminal_statuses_allow_nothing():
    for status in ("rejected", "cancelled", "completed", "dropped_out", "transferred"):
        for action in ACTIONS:
            with pytest.raises(InvalidTransition):
                next_status(status, action, "admin")


def test_unknown_action_is_an_invalid_transition():
    with pytest.raises(InvalidTransition) as caught:
        next_status("requested", "approve", "admin")
    assert caught.value.code == "INVALID_TRANSITION"


def test_an_admission_is_now_unless_an_earlier_day_since_acceptance_is_named():
    accepted = datetime(2027, 3, 10, 3, 0, tzinfo=UTC)  # 10:00 WIB
    now = datetime(2027, 3, 14, 5, 0, tzinfo=UTC)
    assert admission_instant(None, accepted, now) == now
    assert admission_instant(date(2027, 3, 14), accepted, now) == now
    # an earlier day: its first moment in Bengkulu, not before the acceptance
    assert admission_instant(date(2027, 3, 12), accepted, now) == datetime(
        2027, 3, 11, 17, 0, tzinfo=UTC
    )
    assert admission_instant(date(2027, 3, 10), accepted, now) == accepted
    for wrong, words in ((date(2027, 3, 15), "setelah hari ini"), (date(2027, 3, 9), "sebelum")):
        with pytest.raises(ValidationFailed) as refused:
            admission_instant(wrong, accepted, now)
        assert words in refused.value.errors["admitted_on"][0]


def test_a_minor_consents_through_a_named_guardian():
    today = date(2027, 3, 1)
    adult, minor = date(2009, 3, 1), date(2009, 3, 2)  # 18 today, 18 tomorrow
    check_guardian({"given_by": "client"}, adult, today)
    with pytest.raises(ConsentRequired) as caught:
        check_guardian({"given_by": "client"}, minor, today)
    assert set(caught.value.errors["consent"]) == {
        "given_by",
        "guardian_name",
        "guardian_relationship",
    }
    check_guardian(
        {"given_by": "guardian", "guardian_name": "Rusli", "guardian_relationship": "parent"},
        minor,
        today,
    )


def test_after_a_withdrawal_only_later_consent_refers_again():
    withdrawn = datetime(2027, 3, 1, 3, 0, tzinfo=UTC)
    check_new_consent(None, None)
    for given in (None, withdrawn):
        with pytest.raises(ConsentRequired):
            check_new_consent(given, withdrawn)
    check_new_consent(datetime(2027, 3, 1, 3, 1, tzinfo=UTC), withdrawn)


def test_the_day_of_a_withdrawal_is_not_to_come_nor_before_the_referral():
    referred, now = datetime(2027, 2, 10, 3, tzinfo=UTC), datetime(2027, 3, 1, 3, tzinfo=UTC)
    assert withdrawal_day(None, referred, now) == date(2027, 3, 1)
    assert withdrawal_day(date(2027, 2, 10), referred, now) == date(2027, 2, 10)
    for day in (date(2027, 3, 2), date(2027, 2, 9)):
        with pytest.raises(ValidationFailed) as caught:
            withdrawal_day(day, referred, now)
        assert (caught.value.code, list(caught.value.errors)) == (
            "DATE_OUT_OF_RANGE",
            ["withdrawn_on"],
        )


def test_a_withdrawal_hides_the_identity_from_partners_only():
    withdrawn = {"given": True, "withdrawn_at": "2027-03-01T03:00:00Z"}
    partner = Actor("partner", "k", "yayasan-kipas")
    assert identity_hidden(partner, withdrawn)
    assert not identity_hidden(partner, {"given": True})
    assert not identity_hidden(Actor("officer", "k"), withdrawn)
