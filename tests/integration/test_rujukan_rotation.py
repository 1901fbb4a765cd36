"""Rotating both client keys of rujukan (the Fernet key of identity, the HMAC key of the
NIK digest that finds a returning client) with two keys of each kind, on its migrated
database:

- step by step through the handlers: a returning client is found before, during (its
  digest rewritten or not yet) and after the rotation, and a client made under the new
  key meanwhile is left alone;
- `bersinar crypto rotate` while a rujukan service keeps creating referrals: the returning
  client's episodes stay one linked history throughout, nobody is stored twice, and once
  the old keys are gone from the service the client is still found;
- a missing old key (of either kind) is reported and nothing is touched.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from nameko.testing.services import entrypoint_hook
from sqlalchemy import func, select

from bersinar.db import UnitOfWorkFactory
from bersinar.migrations import upgrade
from cli.main import main
from harness import produced
from harness.data import CLIENT_NAME, nik_for, referral_body
from services.rujukan import handlers
from services.rujukan.crypto import ClientCipher
from services.rujukan.models import Base, Client
from services.rujukan.service import RujukanService

FERNET_A, FERNET_B = Fernet.generate_key().decode(), Fernet.generate_key().decode()
HMAC_A = "nik-key-a-of-at-least-thirty-two-characters"
HMAC_B = "nik-key-b-of-at-least-thirty-two-characters"
# before rotation: one NIK key, written without an id as before key ids existed (h1)
BEFORE = {"ENCRYPTION_KEYS": f"k1:{FERNET_A}", "NIK_HMAC_KEY": HMAC_A}
DURING = {
    "ENCRYPTION_KEYS": f"k2:{FERNET_B},k1:{FERNET_A}",
    "NIK_HMAC_KEY": f"h2:{HMAC_B},h1:{HMAC_A}",
}
AFTER = {"ENCRYPTION_KEYS": f"k2:{FERNET_B}", "NIK_HMAC_KEY": f"h2:{HMAC_B}"}
OFFICER = {"role": "officer", "key_id": "k-officer", "partner_id": None}
PARTNER = "yayasan-kipas"
BIRTH = date(1990, 8, 17)
NEWCOMERS_BIRTH = date(1992, 1, 9)  # NIKs of people first referred during the rotation


def cipher(keys: dict) -> ClientCipher:
    return ClientCipher(keys["ENCRYPTION_KEYS"], keys["NIK_HMAC_KEY"])


def nik(serial: int) -> str:
    return nik_for(BIRTH, "M", serial=serial)


def body(serial: int, birth: date = BIRTH) -> dict:
    return referral_body(
        PARTNER, sex="M", birth_date=birth, service_type="outpatient", serial=serial
    )


def with_partner(factory, partner_id: str = PARTNER) -> None:
    """rujukan's read model of one partner with an agreement and room for every test."""
    offers = produced.offers(("outpatient", 100000, "orang"))
    with factory() as uow:
        handlers.apply_partner_snapshot(
            uow,
            produced.partner_event(
                "partner_updated",
                partner_id,
                offers=offers,
                sex_served="all",
                status="active",
                version=9,
            ),
        )
        handlers.apply_agreement(
            uow,
            produced.agreement_signed(
                partner_id,
                id=f"pks-rotation-{partner_id}",
                signed_on=date(2023, 5, 30),
                valid_from=date(2023, 5, 30),
                valid_until=date(2099, 5, 29),
            ),
        )
        uow.commit()


def refer(factory, keys: dict, serial: int) -> dict:
    """A referral of the client of NIK ``serial``, made as the service makes it."""
    from bersinar.contracts.referrals import ReferralCreate

    with factory() as uow:
        made = handlers.create_referral(
            uow, cipher(keys), ReferralCreate().load(body(serial)), OFFICER
        )
        uow.commit()
    return made


def stored(factory) -> dict[str, tuple]:
    with factory() as uow:
        return {
            c.id: (c.nik_digest, c.nik_key_id, c.nik_encrypted, c.name_encrypted, c.key_id)
            for c in uow.session.scalars(select(Client))
        }


def rekey_batch(factory, keys: dict, after: str, limit: int):
    with factory() as uow:
        result = handlers.rekey_clients(uow, cipher(keys), after, limit)
        uow.commit()
    return result


def partnered(empty_database):
    """rujukan's emptied database with one partner known (a fixture's body)."""
    factory = UnitOfWorkFactory(empty_database("rujukan"), "rujukan", Base.metadata)
    with_partner(factory)
    yield factory
    factory.dispose()


@pytest.fixture
def factory(empty_database):
    yield from partnered(empty_database)


def test_a_returning_client_is_found_at_every_step_of_a_rotation(factory):
    first = {serial: refer(factory, BEFORE, serial) for serial in range(1, 13)}
    assert {key for _, key, *_ in stored(factory).values()} == {"h1"}

    count, cursor, duplicates = rekey_batch(factory, DURING, "", 4)
    assert (count, duplicates) == (4, [])
    by_key = {}
    for client_id, (_, key, nik_stored, *_) in stored(factory).items():
        by_key.setdefault(key, []).append((client_id, cipher(DURING).decrypt(nik_stored)))
    assert len(by_key["h2"]) == 4 and len(by_key["h1"]) == 8
    # one client already under the new NIK key, one still under the old, both come back
    for client_id, client_nik in (by_key["h2"][0], by_key["h1"][0]):
        serial = next(s for s in first if nik(s) == client_nik)
        again = refer(factory, DURING, serial)
        assert again["client"]["id"] == client_id == first[serial]["client"]["id"]
        assert again["previous_referral_id"] == first[serial]["id"]
        assert again["client"]["previous_referrals"] == 1
    newcomer = refer(factory, DURING, 100)  # a new person, stored under the new keys
    assert stored(factory)[newcomer["client"]["id"]][1] == "h2"
    assert newcomer["client"]["previous_referrals"] == 0

    rewritten = count
    while True:
        count, cursor, duplicates = rekey_batch(factory, DURING, cursor, 4)
        assert duplicates == []
        if cursor is None:
            break
        rewritten += count
    assert rewritten == 12  # the newcomer was never selected

    clients = stored(factory)
    assert len(clients) == 13
    assert {(key, key_id) for _, key, _, _, key_id in clients.values()} == {("h2", "k2")}
    after = cipher(AFTER)  # the old keys are gone
    for digest, _, nik_stored, name, _ in clients.values():
        assert digest == after.nik_digest(after.decrypt(nik_stored))
        assert after.decrypt(name) == CLIENT_NAME
    for serial in (1, 12, 100):
        again = refer(factory, AFTER, serial)
        assert again["client"]["id"] in clients
        assert again["client"]["previous_referrals"] >= 1
    assert len(stored(factory)) == 13


def test_a_second_record_of_one_person_keeps_its_digest_and_is_reported(
    factory, database_urls, monkeypatch
):
    """An instance left on the old keys does not find a client whose digest was already
    rewritten and stores the person again under the old key; the new digest of that
    record is taken (unique): the rotation skips it, names it and finishes the rest."""
    first = refer(factory, BEFORE, 1)
    refer(factory, BEFORE, 2)
    count, cursor, duplicates = rekey_batch(factory, DURING, "", 10)
    assert (count, duplicates) == (2, [])
    twin = refer(factory, BEFORE, 1)  # the instance that was not restarted
    assert twin["client"]["id"] != first["client"]["id"]
    newcomer = refer(factory, BEFORE, 3)
    count, cursor, duplicates = rekey_batch(factory, DURING, "", 10)
    assert (count, duplicates) == (1, [twin["client"]["id"]])
    assert rekey_batch(factory, DURING, cursor, 10)[1] is None
    clients = stored(factory)
    assert clients[twin["client"]["id"]][1] == "h1"
    assert clients[first["client"]["id"]][1] == clients[newcomer["client"]["id"]][1] == "h2"
    assert refer(factory, DURING, 1)["client"]["id"] == first["client"]["id"]

    monkeypatch.setenv("RUJUKAN_DATABASE_URL", database_urls["rujukan"])
    monkeypatch.setenv("RUJUKAN_ENCRYPTION_KEYS", DURING["ENCRYPTION_KEYS"])
    monkeypatch.setenv("RUJUKAN_NIK_HMAC_KEY", DURING["NIK_HMAC_KEY"])
    result = CliRunner().invoke(main, ["crypto", "rotate"])
    assert result.exit_code == 1
    assert "0 client(s) re-keyed" in result.output
    assert twin["client"]["id"] in result.output and "Keep the old NIK key" in result.output


def test_rotate_refuses_without_an_old_key_then_re_keys_everyone(fresh_database, monkeypatch):
    url = fresh_database()
    upgrade("rujukan", url)
    factory = UnitOfWorkFactory(url, "rujukan", Base.metadata)
    with_partner(factory)
    for serial in range(1, 26):
        refer(factory, BEFORE, serial)
    before = stored(factory)
    monkeypatch.setenv("RUJUKAN_DATABASE_URL", url)
    runner = CliRunner()

    def rotate(keys: dict, *args: str):
        monkeypatch.setenv("RUJUKAN_ENCRYPTION_KEYS", keys["ENCRYPTION_KEYS"])
        monkeypatch.setenv("RUJUKAN_NIK_HMAC_KEY", keys["NIK_HMAC_KEY"])
        return runner.invoke(main, ["crypto", "rotate", *args])

    outputs = []
    for forgotten in (
        {**DURING, "NIK_HMAC_KEY": f"h2:{HMAC_B}"},  # the old NIK key left out
        {**DURING, "ENCRYPTION_KEYS": f"k2:{FERNET_B}"},  # the old encryption key left out
    ):
        refused = rotate(forgotten)
        outputs.append(refused.output)
        assert refused.exit_code == 1
        assert "Nothing was changed" in refused.output
        assert stored(factory) == before
    assert "RUJUKAN_NIK_HMAC_KEY: h1" in outputs[0]
    assert "RUJUKAN_ENCRYPTION_KEYS: k1" in outputs[1]

    result = rotate(DURING, "--batch-size", "10")
    assert result.exit_code == 0, result.output
    assert "25 client(s) re-keyed with keys k2/h2" in result.output
    again = rotate(AFTER)
    assert again.exit_code == 0, again.output
    assert "0 client(s)" in again.output

    after = cipher(AFTER)
    clients = stored(factory)
    assert clients.keys() == before.keys()
    for digest, key, nik_stored, name, key_id in clients.values():
        assert (key, key_id) == ("h2", "k2")
        assert nik_stored.startswith("k2:")
        assert digest == after.nik_digest(after.decrypt(nik_stored))
        assert after.decrypt(name) == CLIENT_NAME
    assert refer(factory, AFTER, 7)["client"]["previous_referrals"] == 1
    factory.dispose()
    printed = "".join(outputs) + result.output + again.output
    assert CLIENT_NAME not in printed
    assert not any(nik(serial) in printed for serial in range(1, 26))


def test_rotate_while_rujukan_creates_referrals_keeps_one_history_per_client(
    factory, container_factory, make_config, database_urls, tmp_path
):
    """The rotation runs as its own process (as an operator runs it) while the service,
    already given the new keys first, is asked for referrals without pause: new people,
    and one client made before the rotation coming back again and again."""
    with factory() as uow:  # clients made before the rotation, under the old keys
        old = cipher(BEFORE)
        for serial in range(1, 801):
            handlers._find_or_create_client(
                uow,
                old,
                {"nik": nik(serial), "name": CLIENT_NAME, "birth_date": BIRTH, "sex": "M"},
            )
        uow.commit()
    history = [refer(factory, BEFORE, 5000)]  # the returning client's first episode
    returning = history[0]["client"]["id"]
    old_clients = len(stored(factory))

    service = container_factory(RujukanService, make_config("rujukan", **DURING))
    service.start()
    env = {
        "PATH": "/usr/bin:/bin",
        "BERSINAR_VAR": str(tmp_path),
        "RUJUKAN_DATABASE_URL": database_urls["rujukan"],
        "RUJUKAN_ENCRYPTION_KEYS": DURING["ENCRYPTION_KEYS"],
        "RUJUKAN_NIK_HMAC_KEY": DURING["NIK_HMAC_KEY"],
    }
    log = tmp_path / "rotate.log"
    with open(log, "w") as output:
        rotation = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "bersinar"),
                "crypto",
                "rotate",
                "--batch-size",
                "20",
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    stale_at_return, newcomers = [], 0
    with entrypoint_hook(service, "create_referral") as create:
        while rotation.poll() is None:
            with factory() as uow:
                stale = uow.session.scalar(
                    select(func.count()).select_from(Client).where(Client.nik_key_id == "h1")
                )
            history.append(create(body(5000), OFFICER))
            stale_at_return.append(stale)
            newcomers += 1
            create(body(newcomers, NEWCOMERS_BIRTH), OFFICER)
    printed = log.read_text()
    during = [s for s in stale_at_return if 0 < s < old_clients]
    print(
        f"\n[rotation] {old_clients} clients re-keyed while the service made "
        f"{len(history) - 1} returning and {newcomers} new referrals; "
        f"{len(during)} returns came mid-rotation; rc={rotation.returncode}"
    )
    assert rotation.returncode == 0, printed
    assert f"{old_clients} client(s) re-keyed with keys k2/h2" in printed
    assert during, "no returning referral was made while the rotation was part way"
    # one client, one linked history of care: every return found the client made before
    assert {made["client"]["id"] for made in history} == {returning}
    for earlier, later in zip(history, history[1:], strict=False):
        assert later["previous_referral_id"] == earlier["id"]
    clients = stored(factory)
    assert len(clients) == old_clients + newcomers
    assert {(key, key_id) for _, key, _, _, key_id in clients.values()} == {("h2", "k2")}

    service.stop()
    service = container_factory(RujukanService, make_config("rujukan", **AFTER))
    service.start()
    with entrypoint_hook(service, "create_referral") as create:
        last = create(body(5000), OFFICER)
        made_during = create(body(1, NEWCOMERS_BIRTH), OFFICER)
        made_before = create(body(1), OFFICER)
    assert last["client"]["id"] == returning
    assert last["previous_referral_id"] == history[-1]["id"]
    assert last["client"]["previous_referrals"] == len(history)
    assert made_during["client"]["previous_referrals"] == 1
    assert made_before["client"]["id"] in clients  # stored before, with no referral yet
    assert len(stored(factory)) == old_clients + newcomers
    assert CLIENT_NAME not in printed and nik(5000) not in printed
