"""Encryption at rest for OAuth tokens, with TOKEN_ENCRYPTION_KEYS, newest first: MultiFernet
encrypts with the first and decrypts with any, so a new key can be put in front and old tokens stay
readable until `python manage.py rotate_token_keys` re-encrypts them. Without keys (development),
one is derived from SECRET_KEY.
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class TokenUnreadable(Exception):
    """The stored token was written under a key that is no longer configured."""


def _development_key():
    digest = hashlib.sha256(b"integrations.crypto:" + settings.SECRET_KEY.encode()).digest()
    return base64.urlsafe_b64encode(digest)


def _fernet():
    keys = settings.TOKEN_ENCRYPTION_KEYS or [_development_key()]
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "TOKEN_ENCRYPTION_KEYS must be comma-separated Fernet keys "
            "(make one with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
        ) from exc


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    return _readable(_fernet().decrypt, ciphertext)


def rotate(ciphertext: str) -> str:
    """Re-encrypt under the newest key."""
    return _readable(_fernet().rotate, ciphertext)


def _readable(read, ciphertext: str) -> str:
    try:
        return read(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise TokenUnreadable("The stored GitHub token cannot be decrypted with the configured keys.") from exc
