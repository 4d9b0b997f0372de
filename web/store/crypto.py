"""Encryption at rest for real names and contact details (AES-256-GCM)."""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import StoreError

_PREFIX = "v1:"


class FieldCipher:
    """Encrypts one text field, bound to its row and column so values cannot be swapped."""

    def __init__(self, data_key: str) -> None:
        if not data_key:
            raise ValueError("a data key is required to store real names")
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"confide field encryption v1"
        ).derive(data_key.encode())
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """Ciphertext text for storage; `context` (e.g. "member:<id>:real_name") is bound in."""
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, stored: str, *, context: str) -> str:
        """The plaintext, or StoreError when the key is wrong or the value was tampered with."""
        if not stored.startswith(_PREFIX):
            raise StoreError("stored field is not in a known format", code="data_key_error")
        raw = base64.urlsafe_b64decode(stored[len(_PREFIX) :])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag:
            raise StoreError(
                "stored field cannot be decrypted (wrong data key?)", code="data_key_error"
            ) from None
