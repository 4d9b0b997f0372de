"""Encryption at rest for real names and contact details (AES-256-GCM).

Each value is stored as `<key id>:<base64 of nonce + ciphertext>`; the key id names the key
of the ring (web/store/keyring.py) it was written with.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import StoreError
from .keyring import Keyring, KeySource, key_source


def _aead(secret: str) -> AESGCM:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"confide field encryption v1"
    ).derive(secret.encode())
    return AESGCM(key)


def key_id_of(stored: str) -> str:
    """The id of the key a stored value was written with ("" when not in a known format)."""
    kid, sep, _ = stored.partition(":")
    return kid if sep and kid.isalnum() and len(kid) <= 16 else ""


class FieldCipher:
    """Encrypts one text field, bound to its row and column so values cannot be swapped."""

    def __init__(self, keys: str | Keyring | KeySource) -> None:
        if isinstance(keys, str) and not keys:
            raise ValueError("a data key is required to store real names")
        self._source = key_source(keys)
        self._aeads: dict[tuple[str, str], AESGCM] = {}

    @property
    def keyring(self) -> Keyring:
        return self._source.current()

    def _for(self, ring: Keyring, kid: str) -> AESGCM:
        secret = ring.keys[kid]
        aead = self._aeads.get((kid, secret))
        if aead is None:
            aead = self._aeads[(kid, secret)] = _aead(secret)
        return aead

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """Ciphertext text for storage; `context` (e.g. "member:<id>:real_name") is bound in."""
        ring = self.keyring
        nonce = os.urandom(12)
        sealed = self._for(ring, ring.primary).encrypt(nonce, plaintext.encode(), context.encode())
        return f"{ring.primary}:" + base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, stored: str, *, context: str) -> str:
        """The plaintext, or StoreError when the key is wrong or the value was tampered with."""
        kid = key_id_of(stored)
        if not kid:
            raise StoreError("stored field is not in a known format", code="data_key_error")
        ring = self.keyring
        if kid not in ring.keys:
            raise StoreError(
                f"stored field was written with data key {kid}, which the key ring lacks",
                code="data_key_error",
            )
        try:
            raw = base64.urlsafe_b64decode(stored[len(kid) + 1 :])
        except (ValueError, binascii.Error):
            raise StoreError("stored field is not in a known format", code="data_key_error") from None
        try:
            return self._for(ring, kid).decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag:
            raise StoreError(
                "stored field cannot be decrypted (wrong data key?)", code="data_key_error"
            ) from None

    def needs_rewrap(self, stored: str) -> bool:
        """True when the value was written with a key other than the primary."""
        return key_id_of(stored) != self.keyring.primary
