"""Client identity at rest: NIK as a keyed HMAC (to find a returning client) and NIK,
name and phone encrypted with Fernet. Both kinds of key rotate the same way: keys are
listed ``id:key,id:key...``, the first writes, every listed key reads (a ciphertext is
prefixed with its key id; a digest is stored beside the id of its key), and
``bersinar crypto rotate`` rewrites what older keys wrote."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

from cryptography.fernet import Fernet, InvalidToken

# the id of an HMAC key written without one (the single-key form of RUJUKAN_NIK_HMAC_KEY,
# which every digest stored before key ids was made with)
UNNAMED_HMAC_KID = "h1"
MIN_HMAC_KEY_LENGTH = 32
_LISTED_KEY = re.compile(r"^([A-Za-z0-9_.-]{1,32}):(.+)$")
# the name index's key is derived from each NIK key: one secret to keep and rotate, and
# a token digest is never a NIK digest
_NAME_INDEX_LABEL = b"bersinar:rujukan:name-index:v1"
_APOSTROPHES = re.compile(r"['\u2018\u2019`\u02bc]")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def name_tokens(name: str) -> list[str]:
    """A name as the blind index keeps it: lower case, accents and punctuation removed
    (``Ma'ruf`` is ``maruf``, ``Siti-Nur`` is ``siti nur``), each distinct word once, in
    order."""
    plain = unicodedata.normalize("NFKD", name or "")
    plain = "".join(c for c in plain if not unicodedata.combining(c)).casefold()
    words = _NOT_ALNUM.sub(" ", _APOSTROPHES.sub("", plain)).split()
    return list(dict.fromkeys(words))


class KeyError_(ValueError):
    pass


def _listed(value: str, variable: str) -> dict[str, str]:
    keys: dict[str, str] = {}
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        kid, _, key = item.partition(":")
        if not kid or not key:
            raise KeyError_(f"each key of {variable} must be written id:key")
        if kid in keys:
            raise KeyError_(f"key id {kid!r} is listed twice in {variable}")
        keys[kid] = key
    return keys


def parse_hmac_keys(value: str | None) -> dict[str, bytes]:
    """``RUJUKAN_NIK_HMAC_KEY``: ``id:key[,id:key...]``, current key first; a value that
    is not such a list is one key, of id ``h1`` (the form before rotation existed)."""
    value = (value or "").strip()
    items = [item.strip() for item in value.split(",") if item.strip()]
    if items and all(_LISTED_KEY.match(item) for item in items):
        keys = _listed(value, "RUJUKAN_NIK_HMAC_KEY")
    else:
        keys = {UNNAMED_HMAC_KID: value}
    for kid, key in keys.items():
        if len(key) < MIN_HMAC_KEY_LENGTH:
            raise KeyError_(
                f"RUJUKAN_NIK_HMAC_KEY: key {kid!r} must be at least "
                f"{MIN_HMAC_KEY_LENGTH} characters"
            )
    return {kid: key.encode() for kid, key in keys.items()}


class ClientCipher:
    def __init__(self, encryption_keys: str, hmac_keys: str):
        """encryption_keys: ``kid:fernet-key[,kid:fernet-key...]``; hmac_keys: the same
        form (or one bare key, id ``h1``); current key first in each."""
        self._keys = {
            kid: Fernet(key.encode())
            for kid, key in _listed(encryption_keys or "", "RUJUKAN_ENCRYPTION_KEYS").items()
        }
        if not self._keys:
            raise KeyError_("no client encryption key is configured (RUJUKAN_ENCRYPTION_KEYS)")
        self.current_kid = next(iter(self._keys))
        self._hmac_keys = parse_hmac_keys(hmac_keys)
        self.current_hmac_kid = next(iter(self._hmac_keys))
        self._name_keys = {
            kid: hmac.new(key, _NAME_INDEX_LABEL, hashlib.sha256).digest()
            for kid, key in self._hmac_keys.items()
        }

    @property
    def key_ids(self) -> set[str]:
        return set(self._keys)

    @property
    def hmac_key_ids(self) -> set[str]:
        return set(self._hmac_keys)

    def nik_digest(self, nik: str, kid: str | None = None) -> str:
        """The HMAC of ``nik`` under key ``kid`` (default: the current key)."""
        key = self._hmac_keys.get(kid or self.current_hmac_kid)
        if key is None:
            raise KeyError_(f"NIK key id {kid!r} is not configured (RUJUKAN_NIK_HMAC_KEY)")
        return hmac.new(key, nik.encode(), hashlib.sha256).hexdigest()

    def nik_digests(self, nik: str) -> dict[str, str]:
        """The NIK's digest under every configured key, the current key's first: a client
        stored under an older key is still found while its digest waits to be rewritten."""
        return {kid: self.nik_digest(nik, kid) for kid in self._hmac_keys}

    def name_digests(self, name: str, kid: str | None = None) -> list[str]:
        """The blind index of a name: the HMAC of each of its tokens (``name_tokens``)
        under the name key derived from NIK key ``kid`` (default: the current key)."""
        key = self._name_keys.get(kid or self.current_hmac_kid)
        if key is None:
            raise KeyError_(f"NIK key id {kid!r} is not configured (RUJUKAN_NIK_HMAC_KEY)")
        return [
            hmac.new(key, token.encode(), hashlib.sha256).hexdigest() for token in name_tokens(name)
        ]

    def encrypt(self, plaintext: str | None) -> str | None:
        if plaintext is None:
            return None
        token = self._keys[self.current_kid].encrypt(plaintext.encode()).decode()
        return f"{self.current_kid}:{token}"

    def decrypt(self, stored: str | None) -> str | None:
        if stored is None:
            return None
        kid, _, token = stored.partition(":")
        try:
            return self._keys[kid].decrypt(token.encode()).decode()
        except (KeyError, InvalidToken) as exc:
            raise KeyError_(f"cannot decrypt with key id {kid!r}") from exc
