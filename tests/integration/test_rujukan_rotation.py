"""`bersinar crypto rotate` on a migrated rujukan database: every client is re-encrypted
with the new key, the old key can then be dropped, a second run has nothing to do, and a
missing old key is reported without touching anything."""

from __future__ import annotations

from datetime import date

from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy import select

from bersinar.db import UnitOfWorkFactory
from bersinar.migrations import upgrade
from cli.main import main
from services.rujukan import handlers
from services.rujukan.crypto import ClientCipher
from services.rujukan.models import Base, Client

HMAC_KEY = "unit-test-nik-hmac-key-32-chars-long!"
NAME = "Dewi Lestari"


def test_rotate_re_encrypts_every_client_and_the_old_key_can_go(fresh_database, monkeypatch):
    url = fresh_database()
    upgrade("rujukan", url)
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    factory = UnitOfWorkFactory(url, "rujukan", Base.metadata)
    before = ClientCipher(f"k1:{old}", HMAC_KEY)
    with factory() as uow:
        for n in range(1, 26):
            handlers._find_or_create_client(
                uow,
                before,
                {
                    "nik": f"17710117089000{n:02d}",
                    "name": NAME,
                    "phone": None if n % 2 else "081200000000",
                    "birth_date": date(1990, 8, 17),
                    "sex": "M",
                },
            )
        uow.commit()
    monkeypatch.setenv("RUJUKAN_DATABASE_URL", url)
    monkeypatch.setenv("RUJUKAN_NIK_HMAC_KEY", HMAC_KEY)
    runner = CliRunner()

    monkeypatch.setenv("RUJUKAN_ENCRYPTION_KEYS", f"k2:{new}")  # the old key forgotten
    refused = runner.invoke(main, ["crypto", "rotate"])
    assert refused.exit_code == 1
    assert "k1" in refused.output

    monkeypatch.setenv("RUJUKAN_ENCRYPTION_KEYS", f"k2:{new},k1:{old}")
    result = runner.invoke(main, ["crypto", "rotate", "--batch-size", "10"])
    assert result.exit_code == 0, result.output
    assert "25 client(s) re-encrypted with key k2" in result.output
    again = runner.invoke(main, ["crypto", "rotate"])
    assert "0 client(s)" in again.output

    only_new = ClientCipher(f"k2:{new}", HMAC_KEY)
    with factory() as uow:
        clients = [
            (c.key_id, c.nik_encrypted, c.name_encrypted, c.phone_encrypted)
            for c in uow.session.scalars(select(Client))
        ]
    factory.dispose()
    assert len(clients) == 25
    assert {key_id for key_id, *_ in clients} == {"k2"}
    assert all(nik.startswith("k2:") for _, nik, _, _ in clients)
    assert {only_new.decrypt(name) for _, _, name, _ in clients} == {NAME}
    assert {only_new.decrypt(phone) for *_, phone in clients} == {None, "081200000000"}
    assert NAME not in result.output + refused.output
