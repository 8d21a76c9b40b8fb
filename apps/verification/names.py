"""People's names compared the way documents and banks write them."""

from __future__ import annotations

import unicodedata

NAME_SEPARATORS = str.maketrans(
    dict.fromkeys("-\u2010\u2011\u2012\u2013\u2014\u2015'\u2019\u02bc`\u00b4.,", " ")
)
NAME_LETTERS = str.maketrans(
    {"æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d", "\u0131": "i"}  # \u0131: dotless i
)


def name_tokens(name: str) -> list[str]:
    """A name as comparable words: no accents, no case, hyphens and apostrophes as spaces."""
    folded = unicodedata.normalize("NFKD", name.casefold().translate(NAME_LETTERS))
    plain = "".join(char for char in folded if not unicodedata.combining(char))
    return plain.translate(NAME_SEPARATORS).split()


def holder_names(holder: str, *, first_name: str, last_name: str) -> bool:
    """Whether an account holder's name (as a bank writes it: "M OU MME MARTIN CAMILLE",
    "MARTIN C.") names this person: every word of the last name is in it, and the first
    name or its initial."""
    words = name_tokens(holder)
    last, first = name_tokens(last_name), name_tokens(first_name)
    if not last or not all(word in words for word in last):
        return False
    initials = {word.rstrip(".")[:1] for word in words if len(word.rstrip(".")) == 1}
    return not first or first[0] in words or first[0][:1] in initials
