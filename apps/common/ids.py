"""Public identifiers: `<type>_` followed by 34 base62 characters from a CSPRNG.

Integer primary keys stay internal; everything the API or a URL shows uses these.
"""

from __future__ import annotations

import math
import secrets
import string

ALPHABET = string.digits + string.ascii_letters  # base62
RANDOM_LENGTH = 34


def random_base62(length: int) -> str:
    """``length`` base62 characters from one draw of the CSPRNG: 64 more bits than the
    characters carry, so the remainder's bias (under 2**-64) is nil in practice, at a
    fraction of the cost of one ``secrets.choice`` per character (ids are made on every
    payment, instalment and order)."""
    bits = math.ceil(length * math.log2(len(ALPHABET))) + 64
    number = int.from_bytes(secrets.token_bytes((bits + 7) // 8), "big")
    characters = []
    for _ in range(length):
        number, index = divmod(number, len(ALPHABET))
        characters.append(ALPHABET[index])
    return "".join(characters)


def new_public_id(prefix: str) -> str:
    """A fresh public id such as ``merchant_11xYpTY...`` (34 random base62 characters)."""
    return f"{prefix}_{random_base62(RANDOM_LENGTH)}"


def with_prefix(prefix: str, value: str) -> str:
    """Accept an id sent with or without its type prefix (clients do both)."""
    return value if value.startswith(f"{prefix}_") else f"{prefix}_{value}"


def is_well_formed(prefix: str, value: str) -> bool:
    head = f"{prefix}_"
    body = value[len(head) :] if value.startswith(head) else ""
    return len(body) == RANDOM_LENGTH and all(char in ALPHABET for char in body)
