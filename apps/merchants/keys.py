"""Secret API keys: their format and how they are stored (pure functions, no ORM)."""

from __future__ import annotations

import hashlib

from apps.common.ids import random_base62

KEY_PREFIXES = {False: "sk_test_", True: "sk_live_"}
KEY_RANDOM_LENGTH = 32  # base62: about 190 bits
DISPLAY_PREFIX_LENGTH = 12  # "sk_test_" + 4 characters
MAX_SECRET_LENGTH = 100


def generate_secret(*, livemode: bool) -> str:
    return KEY_PREFIXES[livemode] + random_base62(KEY_RANDOM_LENGTH)


def hash_secret(secret: str) -> str:
    """SHA-256 of a secret key. Keys carry ~190 random bits, so a fast hash is enough:
    nobody can brute-force the preimage, and the lookup stays one indexed query."""
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_secret(secret: str) -> bool:
    """Cheap shape check before any lookup (the prefix is also part of what is hashed, so a
    key can only ever match with the mode it was made for)."""
    return len(secret) <= MAX_SECRET_LENGTH and secret.startswith(tuple(KEY_PREFIXES.values()))
