"""Secrets kept at rest in a form only this deployment can read back (Fernet).

Used for what Tranche must hold in the clear at some point but never store in the clear:
a merchant's secret API key, which signs its IPNs (``hash_hmac('sha256', pid, key)`` on the
merchant's side), while the key itself is only stored as a SHA-256 for authentication.

The encryption key comes from ``SIGNING_SECRETS_KEY`` (setting, or environment variable):
one or more comma-separated values, the first one encrypts and all of them decrypt, so the
key can be rotated. Each value is either a Fernet key (32 url-safe base64 bytes) or any
other string, stretched with HKDF. Without it, the key is derived from ``SECRET_KEY`` with
HKDF; that derived key always stays among the decryption keys, so a deployment that starts
without ``SIGNING_SECRETS_KEY`` and sets it later still reads what it sealed before.
Changing ``SECRET_KEY`` without ``SIGNING_SECRETS_KEY`` makes the sealed copies unreadable:
``unseal`` raises ``UnsealError`` and the merchant must rotate its API key.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

# Domain separation: the same SECRET_KEY derives other keys elsewhere in Django.
HKDF_INFO = b"tranche/signing-secrets/v1"
HKDF_SALT = b"tranche-signing-secrets"


class UnsealError(Exception):
    """A sealed value that none of the configured keys can open (or was tampered with)."""


def _derive(material: str) -> bytes:
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=HKDF_SALT, info=HKDF_INFO).derive(
        material.encode()
    )
    return base64.urlsafe_b64encode(raw)


def _as_fernet_key(value: str) -> bytes:
    """A configured value as a Fernet key: used as is when it is one, stretched otherwise."""
    try:
        if len(base64.urlsafe_b64decode(value.encode())) == 32:
            return value.encode()
    except (binascii.Error, ValueError):
        pass
    return _derive(value)


def _configured_values() -> list[str]:
    raw = getattr(settings, "SIGNING_SECRETS_KEY", None) or os.environ.get(
        "SIGNING_SECRETS_KEY", ""
    )
    if isinstance(raw, list | tuple):
        values = [str(value).strip() for value in raw]
    else:
        values = [value.strip() for value in str(raw).split(",")]
    return [value for value in values if value]


def _fernet() -> MultiFernet:
    keys = [_as_fernet_key(value) for value in _configured_values()]
    keys.append(_derive(settings.SECRET_KEY))
    return MultiFernet([Fernet(key) for key in keys])


def seal(text: str) -> str:
    """``text`` encrypted and authenticated, as an ASCII token safe to store."""
    return _fernet().encrypt(text.encode()).decode("ascii")


def unseal(token: str) -> str:
    """The text ``seal`` sealed; raises UnsealError if no configured key opens it."""
    try:
        return _fernet().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError) as error:
        raise UnsealError("the sealed value cannot be read with the configured keys") from error


def seal_bytes(data: bytes) -> bytes:
    """``data`` encrypted and authenticated (a Fernet token: ASCII, about 4/3 of the size)."""
    return _fernet().encrypt(data)


def unseal_bytes(token: bytes) -> bytes:
    """The bytes ``seal_bytes`` sealed; raises UnsealError if no configured key opens them."""
    try:
        return _fernet().decrypt(token)
    except InvalidToken as error:
        raise UnsealError("the sealed value cannot be read with the configured keys") from error
