"""`bersinar secrets init`: the keys it writes are the listed form that rotates (an id
before each key), the file is private, and an existing file is never overwritten."""

from __future__ import annotations

import os

from click.testing import CliRunner

from bersinar.config import load_secrets_file
from cli.main import main
from services.rujukan.crypto import ClientCipher


def test_secrets_init_writes_rotatable_keys_once(tmp_path, monkeypatch):
    monkeypatch.setenv("BERSINAR_VAR", str(tmp_path))
    runner = CliRunner()
    assert runner.invoke(main, ["secrets", "init"]).exit_code == 0
    path = tmp_path / "secrets.env"
    written = path.read_text()
    values = dict(
        line.split("=", 1) for line in written.splitlines() if line and not line.startswith("#")
    )
    cipher = ClientCipher(values["RUJUKAN_ENCRYPTION_KEYS"], values["RUJUKAN_NIK_HMAC_KEY"])
    assert (cipher.current_kid, cipher.current_hmac_kid) == ("k1", "h1")
    assert values["RUJUKAN_NIK_HMAC_KEY"].startswith("h1:")
    assert path.stat().st_mode & 0o777 == 0o600

    again = runner.invoke(main, ["secrets", "init"])
    assert again.exit_code == 0 and "kept" in again.output
    assert path.read_text() == written


def test_the_secrets_file_is_read_as_compose_reads_an_env_file(tmp_path, monkeypatch):
    """Quotes, ``export`` and comments as docker compose's env_file takes them; a
    variable already in the environment wins over the file."""
    path = tmp_path / "secrets.env"
    path.write_text(
        "# a comment\n"
        "export BERSINAR_ADMIN_KEY=bsk_from_file\n"
        'RUJUKAN_ENCRYPTION_KEYS="k2:new,k1:old"  # rotated\n'
        "RUJUKAN_NIK_HMAC_KEY='h1:quoted value'\n"
        "GATEWAY_RPC_TIMEOUT=9\n"
    )
    for name in ("BERSINAR_ADMIN_KEY", "RUJUKAN_ENCRYPTION_KEYS", "RUJUKAN_NIK_HMAC_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GATEWAY_RPC_TIMEOUT", "3")
    load_secrets_file(path)
    assert os.environ["BERSINAR_ADMIN_KEY"] == "bsk_from_file"
    assert os.environ["RUJUKAN_ENCRYPTION_KEYS"] == "k2:new,k1:old"
    assert os.environ["RUJUKAN_NIK_HMAC_KEY"] == "h1:quoted value"
    assert os.environ["GATEWAY_RPC_TIMEOUT"] == "3"
