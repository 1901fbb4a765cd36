"""The fuzzer's knowledge of rules no schema states (tests/e2e/fuzz_hooks.py) is the
services' own: what it makes of valid data passes their checks."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis.checks import CHECKS

from bersinar.contracts.partners import AgreementInput, PartnerCreate
from services.rujukan import domain
from tests.e2e import fuzz_hooks

nik = st.from_regex(r"[0-9]{16}", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(nik=nik, born=st.dates(), sex=st.sampled_from(["M", "F"]))
def test_a_referral_gets_a_nik_that_agrees_with_its_client(nik, born, sex):
    body = {"client": {"nik": nik, "birth_date": born.isoformat(), "sex": sex, "name": "x"}}
    fuzz_hooks._referral(body)
    client = body["client"]
    birth_date = date.fromisoformat(client["birth_date"])
    domain.check_birth_date(birth_date, date.today())
    domain.check_nik(client["nik"], birth_date, sex)
    assert client["nik"][2:6] == nik[2:6]  # the rest stays as generated


@settings(max_examples=200, deadline=None)
@given(dates=st.lists(st.dates(), min_size=3, max_size=3))
def test_an_agreement_gets_its_dates_in_order(dates):
    body = {
        "number": "PKS/1",
        "signed_on": dates[0].isoformat(),
        "valid_from": dates[1].isoformat(),
        "valid_until": dates[2].isoformat(),
        "renews_agreement_id": "tidak-ada",
    }
    fuzz_hooks._agreement(body)
    assert AgreementInput().load(body)["renews_agreement_id"] is None


def test_a_partner_offers_each_service_once():
    offers = [
        {"service_type": "inpatient", "capacity": 1},
        {"service_type": "inpatient", "capacity": 2},
        {"service_type": "aftercare", "capacity": 3},
    ]
    body = {"name": "Yayasan Uji", "kind": "foundation", "kabupaten_kota": "Kaur"}
    body.update(sex_served="all", services=offers)
    fuzz_hooks._services(body)
    assert [o["capacity"] for o in PartnerCreate().load(body)["services"]] == [1, 3]


def test_the_state_aware_acceptance_check_is_registered():
    assert "positive_data_acceptance_beyond_state" in CHECKS.get_all_names()
