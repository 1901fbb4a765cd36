"""`bersinar secrets init`: the keys it writes are the listed form that rotates (an id
before each key), the file is private, and an existing file is never overwritten."""

from __future__ import annotations

from click.testing import CliRunner

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
