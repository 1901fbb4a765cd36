"""Finding a client in rujukan on its migrated database, through the handlers: by exact
NIK (its digest under every configured key) and by name (the keyed blind index of the
name's words), narrowed by partner, status, service type and dates, in pages with a
total; a partner's operator finds only its own clients; every client shown is in the
access audit; the index holds no word of a name; clients stored before the index are
indexed by the rotation step; the officer is told of a client's open referrals."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from marshmallow import ValidationError
from sqlalchemy import delete, select, update

from bersinar.contracts.referrals import ClientSearch, ReferralCreate
from bersinar.errors import DomainError
from cli.main import main
from services.rujukan import handlers
from services.rujukan.models import AccessAudit, Client, ClientNameToken
from tests.integration.test_rujukan_rotation import (
    BEFORE,
    DURING,
    OFFICER,
    PARTNER,
    body,
    cipher,
    nik,
    partnered,
)

OWN_PARTNER = {"role": "partner", "key_id": "k-kipas", "partner_id": PARTNER}
OTHER_PARTNER = {"role": "partner", "key_id": "k-lain", "partner_id": "yayasan-lain"}
NAMES = {1: "Siti Nurhaliza", 2: "Budi Santoso", 3: "Budi Hartono", 4: "Ma'ruf Amin"}


def refer(factory, serial: int, keys: dict = BEFORE) -> dict:
    request = body(serial)
    request["client"]["name"] = NAMES[serial]
    with factory() as uow:
        made = handlers.create_referral(uow, cipher(keys), ReferralCreate().load(request), OFFICER)
        uow.commit()
    return made


def search(factory, actor=OFFICER, keys: dict = BEFORE, **query) -> dict:
    with factory() as uow:
        found = handlers.search_clients(uow, cipher(keys), actor, ClientSearch().load(query))
        uow.commit()
    return found


def names(found: dict) -> list[str]:
    return sorted(item["identity"]["name"] for item in found["items"])


@pytest.fixture
def factory(empty_database):
    yield from partnered(empty_database)


@pytest.fixture
def referred(factory):
    return {serial: refer(factory, serial) for serial in NAMES}


def test_a_client_is_found_by_every_word_of_the_name_or_by_nik(factory, referred):
    assert names(search(factory, name="budi")) == ["Budi Hartono", "Budi Santoso"]
    assert names(search(factory, name="SANTOSO  budi")) == ["Budi Santoso"]
    assert names(search(factory, name="Sití-Nurhaliza")) == ["Siti Nurhaliza"]
    assert names(search(factory, name="maruf")) == ["Ma'ruf Amin"]
    assert search(factory, name="Budi Siti")["total"] == 0
    assert search(factory, name="bud")["total"] == 0  # whole words only
    by_nik = search(factory, nik=nik(2))
    assert names(by_nik) == ["Budi Santoso"]
    item = by_nik["items"][0]
    assert item["identity"]["nik"] == nik(2)
    assert [r["id"] for r in item["referrals"]] == [referred[2]["id"]]
    assert search(factory, nik=nik(2), name="hartono")["total"] == 0


def test_filters_and_pages(factory, referred):
    with factory() as uow:
        handlers.transition(uow, OFFICER, referred[3]["id"], "cancel", {})
        uow.commit()
    assert names(search(factory, name="budi", status="cancelled")) == ["Budi Hartono"]
    assert names(search(factory, name="budi", service_type="inpatient")) == []
    assert search(factory, name="budi", service_type="outpatient")["total"] == 2
    assert search(factory, name="budi", referred_from="2099-01-01")["total"] == 0
    first = search(factory, name="budi", limit=1)
    assert (first["total"], first["pages"], first["previous_page"], first["next_page"]) == (
        2,
        2,
        None,
        2,
    )
    second = search(factory, name="budi", limit=1, page=2)
    assert (second["previous_page"], second["next_page"]) == (1, None)
    assert names(first) + names(second) != names(first) * 2
    assert sorted(names(first) + names(second)) == ["Budi Hartono", "Budi Santoso"]


def test_partners_find_only_their_own_clients_and_every_find_is_audited(factory, referred):
    assert search(factory, OWN_PARTNER, name="budi")["total"] == 2
    assert search(factory, OTHER_PARTNER, name="budi")["total"] == 0
    with pytest.raises(DomainError) as refused:
        search(factory, OTHER_PARTNER, name="budi", partner_id=PARTNER)
    assert refused.value.status == 404
    with pytest.raises(DomainError) as refused:
        search(factory, {"role": "national", "key_id": "k-n"}, name="budi")
    assert refused.value.status == 404
    with factory() as uow:
        audited = uow.session.execute(
            select(AccessAudit.client_id, AccessAudit.purpose).where(
                AccessAudit.actor == "partner:k-kipas"
            )
        ).all()
    assert sorted(client for client, _ in audited) == sorted(
        referred[s]["client"]["id"] for s in (2, 3)
    )
    assert {purpose for _, purpose in audited} == {"pencarian klien (nama)"}


def test_the_index_holds_digests_only(factory, referred):
    with factory() as uow:
        rows = uow.session.scalars(select(ClientNameToken.digest)).all()
    digests = set(rows)
    assert (len(rows), len(digests)) == (8, 7)  # two words of four names, "budi" twice
    words = {w for name in NAMES.values() for w in name.lower().replace("'", "").split()}
    assert not any(word in digest for digest in digests for word in words)
    assert all(len(d) == 64 and set(d) <= set("0123456789abcdef") for d in digests)


def test_clients_stored_before_the_index_are_indexed_by_the_rotation(factory, referred):
    with factory() as uow:
        uow.session.execute(delete(ClientNameToken))
        uow.session.execute(update(Client).values(name_index_key_id=None))
        uow.commit()
    assert search(factory, name="budi")["total"] == 0
    with factory() as uow:
        assert handlers.clients_to_rekey(uow, cipher(BEFORE)) == 4
        count, _, duplicates = handlers.rekey_clients(uow, cipher(BEFORE))
        uow.commit()
    assert (count, duplicates) == (4, [])
    assert search(factory, name="budi")["total"] == 2
    # during a rotation, names indexed under the old key are found, and rewritten
    assert search(factory, keys=DURING, name="budi")["total"] == 2
    with factory() as uow:
        handlers.rekey_clients(uow, cipher(DURING))
        uow.commit()
        assert set(uow.session.scalars(select(Client.name_index_key_id))) == {"h2"}
    assert search(factory, keys=DURING, name="siti")["total"] == 1


def test_bersinar_crypto_rotate_indexes_clients_stored_before_the_index(
    factory, referred, database_urls, monkeypatch
):
    """The operator's step after upgrading: the same keys, every client's name indexed."""
    with factory() as uow:
        uow.session.execute(delete(ClientNameToken))
        uow.session.execute(update(Client).values(name_index_key_id=None))
        uow.commit()
    monkeypatch.setenv("RUJUKAN_DATABASE_URL", database_urls["rujukan"])
    monkeypatch.setenv("RUJUKAN_ENCRYPTION_KEYS", BEFORE["ENCRYPTION_KEYS"])
    monkeypatch.setenv("RUJUKAN_NIK_HMAC_KEY", BEFORE["NIK_HMAC_KEY"])
    result = CliRunner().invoke(main, ["crypto", "rotate", "--batch-size", "3"])
    assert result.exit_code == 0, result.output
    assert "4 client(s) re-keyed" in result.output
    assert names(search(factory, name="budi")) == ["Budi Hartono", "Budi Santoso"]
    assert "Budi" not in result.output and nik(2) not in result.output


def test_a_search_needs_a_nik_or_a_word_of_a_name():
    for query in ({}, {"name": "-- ¿? --"}, {"status": "admitted"}):
        with pytest.raises(ValidationError):
            ClientSearch().load(query)


def test_an_officer_is_told_of_open_referrals_of_the_nik(factory, referred):
    with factory() as uow:
        found = handlers.open_referrals(uow, cipher(BEFORE), nik(2))
        nobody = handlers.open_referrals(uow, cipher(BEFORE), nik(77))
    assert [(r["referral_id"], r["status"]) for r in found] == [(referred[2]["id"], "requested")]
    assert nobody == []
