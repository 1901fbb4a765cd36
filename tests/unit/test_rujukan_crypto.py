"""Client identity at rest: Fernet with key ids for rotation, NIK as a keyed HMAC."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from services.rujukan.crypto import ClientCipher, KeyError_, name_tokens

HMAC_KEY = "unit-test-nik-hmac-key-32-chars-long!"
OTHER_HMAC_KEY = "another-nik-hmac-key-also-32-chars-long"
NIK = "1771011708900001"


@pytest.fixture(scope="module")
def old_key():
    return Fernet.generate_key().decode()


@pytest.fixture(scope="module")
def new_key():
    return Fernet.generate_key().decode()


@pytest.mark.parametrize(
    "plaintext", [NIK, "Siti Nurhaliza binti Ahmad", "+6281234567890", "Ñoño Šťastný 李", ""]
)
def test_round_trip(old_key, plaintext):
    cipher = ClientCipher(f"k1:{old_key}", HMAC_KEY)
    assert cipher.decrypt(cipher.encrypt(plaintext)) == plaintext


def test_none_stays_none(old_key):
    cipher = ClientCipher(f"k1:{old_key}", HMAC_KEY)
    assert cipher.encrypt(None) is None
    assert cipher.decrypt(None) is None


def test_ciphertext_does_not_show_the_plaintext(old_key):
    cipher = ClientCipher(f"k1:{old_key}", HMAC_KEY)
    stored = cipher.encrypt(NIK)
    assert NIK not in stored
    assert "Budi" not in cipher.encrypt("Budi Santoso")
    # Encrypting twice gives two ciphertexts: equal plaintexts cannot be spotted.
    assert cipher.encrypt(NIK) != stored


def test_ciphertext_names_its_key(old_key):
    assert ClientCipher(f"k1:{old_key}", HMAC_KEY).encrypt(NIK).startswith("k1:")


def test_rotated_keys_read_old_ciphertext_and_write_with_the_new_key(old_key, new_key):
    before = ClientCipher(f"k1:{old_key}", HMAC_KEY)
    stored_before = before.encrypt(NIK)

    after = ClientCipher(f"k2:{new_key},k1:{old_key}", HMAC_KEY)
    assert after.decrypt(stored_before) == NIK

    stored_after = after.encrypt(NIK)
    assert stored_after.startswith("k2:")
    assert after.decrypt(stored_after) == NIK
    # The old key alone cannot read what the new key wrote.
    with pytest.raises(KeyError_):
        before.decrypt(stored_after)


def test_a_retired_key_no_longer_decrypts(old_key, new_key):
    stored = ClientCipher(f"k1:{old_key}", HMAC_KEY).encrypt(NIK)
    with pytest.raises(KeyError_):
        ClientCipher(f"k2:{new_key}", HMAC_KEY).decrypt(stored)


def test_a_ciphertext_under_a_wrong_key_with_the_same_id_is_refused(old_key, new_key):
    stored = ClientCipher(f"k1:{old_key}", HMAC_KEY).encrypt(NIK)
    with pytest.raises(KeyError_):
        ClientCipher(f"k1:{new_key}", HMAC_KEY).decrypt(stored)


def test_tampered_ciphertext_is_refused(old_key):
    cipher = ClientCipher(f"k1:{old_key}", HMAC_KEY)
    stored = cipher.encrypt(NIK)
    flipped = stored[:-5] + ("A" if stored[-5] != "A" else "B") + stored[-4:]
    with pytest.raises(KeyError_):
        cipher.decrypt(flipped)


@pytest.mark.parametrize("keys", ["", None, " , ", ","])
def test_missing_encryption_keys_are_refused(keys):
    with pytest.raises(KeyError_):
        ClientCipher(keys, HMAC_KEY)


def test_key_without_an_id_is_refused(old_key):
    with pytest.raises(KeyError_):
        ClientCipher(old_key, HMAC_KEY)
    with pytest.raises(KeyError_):
        ClientCipher(f":{old_key}", HMAC_KEY)


@pytest.mark.parametrize("hmac_key", [None, "", "x" * 31])
def test_short_hmac_key_is_refused(old_key, hmac_key):
    with pytest.raises(KeyError_):
        ClientCipher(f"k1:{old_key}", hmac_key)


def test_hmac_key_of_32_characters_is_enough(old_key):
    ClientCipher(f"k1:{old_key}", "x" * 32)


def test_nik_digest_is_deterministic_and_independent_of_the_encryption_key(old_key, new_key):
    one = ClientCipher(f"k1:{old_key}", HMAC_KEY)
    two = ClientCipher(f"k2:{new_key}", HMAC_KEY)
    assert one.nik_digest(NIK) == one.nik_digest(NIK) == two.nik_digest(NIK)


def test_nik_digest_depends_on_the_hmac_key_and_the_nik(old_key):
    one = ClientCipher(f"k1:{old_key}", HMAC_KEY)
    other = ClientCipher(f"k1:{old_key}", OTHER_HMAC_KEY)
    assert one.nik_digest(NIK) != other.nik_digest(NIK)
    assert one.nik_digest(NIK) != one.nik_digest("1771011708900002")


def test_nik_digest_does_not_show_the_nik(old_key):
    digest = ClientCipher(f"k1:{old_key}", HMAC_KEY).nik_digest(NIK)
    assert NIK not in digest
    assert len(digest) == 64  # SHA-256, hex
    int(digest, 16)


def test_a_nik_key_written_without_an_id_is_key_h1(old_key):
    """The single-key form of RUJUKAN_NIK_HMAC_KEY, as configured before key ids, still
    works and gives the digests it always gave: the stored digests (id h1 since the
    migration) keep matching once the value is rewritten as ``h1:<key>``."""
    bare = ClientCipher(f"k1:{old_key}", HMAC_KEY)
    listed = ClientCipher(f"k1:{old_key}", f"h1:{HMAC_KEY}")
    assert bare.current_hmac_kid == listed.current_hmac_kid == "h1"
    assert bare.nik_digest(NIK) == listed.nik_digest(NIK)


def test_the_first_nik_key_writes_and_every_listed_key_finds(old_key):
    rotated = ClientCipher(f"k1:{old_key}", f"h2:{OTHER_HMAC_KEY},h1:{HMAC_KEY}")
    before = ClientCipher(f"k1:{old_key}", HMAC_KEY)
    assert rotated.current_hmac_kid == "h2"
    assert rotated.nik_digest(NIK) == ClientCipher(f"k1:{old_key}", OTHER_HMAC_KEY).nik_digest(NIK)
    digests = rotated.nik_digests(NIK)
    assert list(digests) == ["h2", "h1"]  # the current key's first
    assert digests["h1"] == before.nik_digest(NIK) == rotated.nik_digest(NIK, "h1")
    assert digests["h2"] != digests["h1"]
    assert rotated.hmac_key_ids == {"h1", "h2"}


def test_a_nik_key_no_longer_listed_is_refused_by_name(old_key):
    with pytest.raises(KeyError_, match="'h1'"):
        ClientCipher(f"k1:{old_key}", f"h2:{OTHER_HMAC_KEY}").nik_digest(NIK, "h1")


@pytest.mark.parametrize(
    "keys",
    [
        f"h2:{OTHER_HMAC_KEY},h1:short",  # every listed key must be long enough
        f"h1:{OTHER_HMAC_KEY},h1:{HMAC_KEY}",  # an id twice
    ],
)
def test_bad_nik_key_lists_are_refused_without_showing_a_key(old_key, keys):
    with pytest.raises(KeyError_) as refused:
        ClientCipher(f"k1:{old_key}", keys)
    assert "h1" in str(refused.value)
    assert HMAC_KEY not in str(refused.value) and OTHER_HMAC_KEY not in str(refused.value)
    assert "short" not in str(refused.value)


def test_an_encryption_key_id_listed_twice_is_refused(old_key, new_key):
    with pytest.raises(KeyError_, match="'k1'"):
        ClientCipher(f"k1:{new_key},k1:{old_key}", HMAC_KEY)


def test_a_name_is_indexed_by_its_words_without_case_accents_or_punctuation():
    assert name_tokens("  Sití-NURHALIZA  ") == ["siti", "nurhaliza"]
    assert name_tokens("Ma'ruf Amin, S.Pd.") == ["maruf", "amin", "s", "pd"]
    assert name_tokens("Budi budi BUDI") == ["budi"]
    assert name_tokens("¿? --") == []


def test_name_digests_are_keyed_and_differ_from_nik_digests():
    fernet = Fernet.generate_key().decode()
    one = ClientCipher(f"k1:{fernet}", "h1:" + "a" * 32 + ",h0:" + "b" * 32)
    assert one.name_digests("Budi Santoso") == one.name_digests("santoso? BUDI")[::-1]
    assert one.name_digests("Budi", "h0") != one.name_digests("Budi", "h1")
    assert one.name_digests("1234") != [one.nik_digest("1234")]
