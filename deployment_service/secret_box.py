"""Secrets at rest: Fernet tokens (AES-128-CBC + HMAC-SHA256) under ``TROY_SECRETS_KEY``, or, when
that is unset, a key derived from ``DJANGO_SECRET_KEY`` with HKDF-SHA256.

Several keys (comma-separated) make a MultiFernet: the first encrypts, every one decrypts, so a
key is rotated by putting the new one first (``rotate`` re-encrypts a token under it).
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# Distinct from anything else that might derive from SECRET_KEY; changing it orphans every token.
_HKDF_INFO = b"troy build secrets v1"


class SecretUnreadable(Exception):
    """A stored token no configured key opens (the key changed): the secret must be set again."""


def _derived_key(secret_key: str) -> bytes:
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret_key.encode())
    return base64.urlsafe_b64encode(raw)


@functools.cache
def _box(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if not keys:
        return MultiFernet([Fernet(_derived_key(secret_key))])
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "TROY_SECRETS_KEY must be Fernet keys (32 url-safe base64 bytes each, comma-separated); "
            "make one with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
        ) from exc


def box() -> MultiFernet:
    return _box(tuple(settings.TROY_SECRETS_KEY), settings.SECRET_KEY)


def encrypt(value: str) -> str:
    return box().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return box().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable("No configured key decrypts this secret; set it again.") from exc


def rotate(token: str) -> str:
    """The token re-encrypted under the first key (unchanged plaintext)."""
    try:
        return box().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable("No configured key decrypts this secret; set it again.") from exc
