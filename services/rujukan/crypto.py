"""Client identity at rest: NIK as a keyed HMAC (to find a returning client) and NIK,
name and phone encrypted with Fernet. Each ciphertext is prefixed with the id of its key
so keys can be rotated: the first key encrypts, every listed key decrypts."""

from __future__ import annotations

import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken


class KeyError_(ValueError):
    pass


class ClientCipher:
    def __init__(self, encryption_keys: str, hmac_key: str):
        """encryption_keys: ``kid:fernet-key[,kid:fernet-key...]``, current key first."""
        self._keys: dict[str, Fernet] = {}
        self.current_kid = ""
        for item in (encryption_keys or "").split(","):
            item = item.strip()
            if not item:
                continue
            kid, _, key = item.partition(":")
            if not kid or not key:
                raise KeyError_("each encryption key must be written kid:key")
            self._keys[kid] = Fernet(key.encode())
            self.current_kid = self.current_kid or kid
        if not self._keys:
            raise KeyError_("no client encryption key is configured (RUJUKAN_ENCRYPTION_KEYS)")
        if len(hmac_key or "") < 32:
            raise KeyError_("RUJUKAN_NIK_HMAC_KEY must be at least 32 characters")
        self._hmac_key = hmac_key.encode()

    def nik_digest(self, nik: str) -> str:
        return hmac.new(self._hmac_key, nik.encode(), hashlib.sha256).hexdigest()

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
