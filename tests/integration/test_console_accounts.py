"""Console accounts in the gateway's migrated database: argon2 hashes, sessions, the lock
after repeated failures, resets by an admin."""

from __future__ import annotations

import pytest

from bersinar.db import UnitOfWorkFactory
from bersinar.errors import Conflict, ValidationFailed
from gateway.console import accounts
from gateway.models import Base, ConsoleUser

POLICY = accounts.Policy(lock_after=3, lock_minutes=15, session_hours=8)
PASSWORD = "kata-sandi-rahasia-1"


@pytest.fixture
def uow_factory(empty_database):
    factory = UnitOfWorkFactory(empty_database("gateway"), "gateway", Base.metadata)
    yield factory
    factory.dispose()


def make_user(factory, username="operator.dwin", role="partner", partner_id="dwin"):
    with factory() as uow:
        user = accounts.create_user(
            uow,
            {
                "username": username,
                "full_name": "Operator Dwin",
                "role": role,
                "partner_id": partner_id,
                "password": PASSWORD,
            },
            "test",
        )
        uow.commit()
    return user


def sign_in(factory, username, password):
    with factory() as uow:
        try:
            return accounts.sign_in(uow, username, password, POLICY)
        finally:
            uow.commit()


def test_a_password_is_kept_only_as_an_argon2id_hash(uow_factory):
    user = make_user(uow_factory)
    with uow_factory() as uow:
        stored = uow.session.get(ConsoleUser, user["id"]).password_hash
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_a_session_carries_the_role_and_partner_as_an_api_caller(uow_factory):
    make_user(uow_factory)
    token = sign_in(uow_factory, "operator.dwin", PASSWORD)
    with uow_factory() as uow:
        signed_in = accounts.session_of(uow, token)
        assert accounts.session_of(uow, token + "x") is None
    caller = signed_in.caller
    assert (caller.role, caller.partner_id, caller.key_id) == (
        "partner",
        "dwin",
        "user:operator.dwin",
    )
    assert len(signed_in.csrf_token) >= 32


def test_repeated_failures_lock_the_account_and_a_reset_unlocks_it(uow_factory):
    user = make_user(uow_factory)
    for _ in range(POLICY.lock_after - 1):
        with pytest.raises(accounts.SignInRefused) as refused:
            sign_in(uow_factory, "operator.dwin", "salah-salah-salah")
        assert refused.value.locked_until is None
    with pytest.raises(accounts.SignInRefused) as refused:
        sign_in(uow_factory, "operator.dwin", "salah-salah-salah")
    assert refused.value.locked_until is not None
    # locked: even the right password is refused now
    with pytest.raises(accounts.SignInRefused) as refused:
        sign_in(uow_factory, "operator.dwin", PASSWORD)
    assert refused.value.locked_until is not None

    with uow_factory() as uow:
        accounts.set_password(uow, user["id"], "sandi-baru-dari-admin")
        uow.commit()
    with pytest.raises(accounts.SignInRefused):
        sign_in(uow_factory, "operator.dwin", PASSWORD)
    assert sign_in(uow_factory, "operator.dwin", "sandi-baru-dari-admin")


def test_a_new_password_ends_every_session(uow_factory):
    user = make_user(uow_factory)
    token = sign_in(uow_factory, "operator.dwin", PASSWORD)
    with uow_factory() as uow:
        accounts.set_password(uow, user["id"], "sandi-baru-dari-admin")
        uow.commit()
    with uow_factory() as uow:
        assert accounts.session_of(uow, token) is None


def test_sign_out_ends_the_session(uow_factory):
    make_user(uow_factory)
    token = sign_in(uow_factory, "operator.dwin", PASSWORD)
    with uow_factory() as uow:
        accounts.sign_out(uow, accounts.digest(token))
        uow.commit()
    with uow_factory() as uow:
        assert accounts.session_of(uow, token) is None


def test_an_unknown_name_is_refused_like_a_wrong_password(uow_factory):
    with pytest.raises(accounts.SignInRefused) as refused:
        sign_in(uow_factory, "tidak-ada", PASSWORD)
    assert refused.value.locked_until is None


@pytest.mark.parametrize(
    "change, field",
    [
        ({"username": "A"}, "username"),
        ({"role": "national"}, "role"),
        ({"partner_id": None}, "partner_id"),
        ({"role": "officer"}, "partner_id"),
        ({"password": "pendek"}, "password"),
    ],
)
def test_a_bad_account_is_refused_at_its_field(uow_factory, change, field):
    data = {
        "username": "operator.kipas",
        "full_name": "Operator",
        "role": "partner",
        "partner_id": "yayasan-kipas",
        "password": PASSWORD,
        **change,
    }
    with uow_factory() as uow, pytest.raises(ValidationFailed) as refused:
        accounts.create_user(uow, data, "test")
    assert field in refused.value.errors


def test_a_name_is_taken_once(uow_factory):
    make_user(uow_factory)
    with pytest.raises(Conflict):
        make_user(uow_factory)


def test_the_first_admin_takes_its_password_from_the_environment_when_given(
    empty_database, tmp_path, monkeypatch
):
    """What the containers' migrate job runs (`bersinar setup`): with
    BERSINAR_CONSOLE_ADMIN_PASSWORD (a Kubernetes Secret) the admin signs in with it and
    no file is written; a second run changes nothing."""
    from click.testing import CliRunner

    from cli.main import main

    url = empty_database("gateway")
    monkeypatch.setenv("GATEWAY_DATABASE_URL", url)
    monkeypatch.setenv("BERSINAR_VAR", str(tmp_path))
    monkeypatch.setenv("BERSINAR_CONSOLE_ADMIN_PASSWORD", PASSWORD)
    runner = CliRunner()
    first = runner.invoke(main, ["users", "bootstrap"])
    assert first.exit_code == 0, first.output
    assert "BERSINAR_CONSOLE_ADMIN_PASSWORD" in first.output
    assert not (tmp_path / "console-admin.txt").exists()
    factory = UnitOfWorkFactory(url, "gateway", Base.metadata)
    try:
        assert sign_in(factory, "admin", PASSWORD) is not None
    finally:
        factory.dispose()
    again = runner.invoke(main, ["users", "bootstrap"])
    assert again.exit_code == 0 and "none created" in again.output


def test_a_disabled_account_loses_its_sessions_and_signs_in_again_once_enabled(uow_factory):
    admin = make_user(uow_factory, "admin.uji", "admin", None)
    user = make_user(uow_factory)
    token = sign_in(uow_factory, "operator.dwin", PASSWORD)
    with uow_factory() as uow:
        assert accounts.set_disabled(uow, user["id"], True, admin["id"])["disabled"]
        uow.commit()
    with uow_factory() as uow:
        assert accounts.session_of(uow, token) is None
    # a wrong password is refused as for anyone; only the right one is told it is disabled
    with pytest.raises(accounts.SignInRefused) as refused:
        sign_in(uow_factory, "operator.dwin", "bukan-sandinya-1")
    assert not refused.value.disabled
    with pytest.raises(accounts.SignInRefused) as refused:
        sign_in(uow_factory, "operator.dwin", PASSWORD)
    assert refused.value.disabled
    with uow_factory() as uow:
        assert not accounts.set_disabled(uow, user["id"], False, admin["id"])["disabled"]
        uow.commit()
    assert sign_in(uow_factory, "operator.dwin", PASSWORD)


def test_an_admin_cannot_disable_their_own_account(uow_factory):
    admin = make_user(uow_factory, "admin.uji", "admin", None)
    with uow_factory() as uow, pytest.raises(Conflict):
        accounts.set_disabled(uow, admin["id"], True, admin["id"])
