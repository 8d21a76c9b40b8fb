"""Every user-facing string has its French translation, compiled."""

import gettext
import re

from django.conf import settings

PO = settings.BASE_DIR / "locale" / "fr" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")


def _strings(lines: list[str]) -> str:
    return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', "\n".join(lines))).replace('\\"', '"')


def po_entries():
    """(context, msgid, [msgstr...], flags) for each entry of the .po file."""
    for block in PO.read_text().split("\n\n"):
        lines = [line for line in block.splitlines() if not line.startswith("#~")]
        keys = [
            i
            for i, line in enumerate(lines)
            if re.match(r"^(msgctxt|msgid|msgid_plural|msgstr(\[\d\])?) ", line)
        ]
        parts = {}
        for start, end in zip(keys, [*keys[1:], len(lines)], strict=True):
            name = lines[start].split(" ", 1)[0]
            parts[name] = _strings(lines[start:end])
        if parts.get("msgid"):
            flags = " ".join(line for line in lines if line.startswith("#,"))
            strs = [value for name, value in parts.items() if name.startswith("msgstr")]
            yield parts.get("msgctxt"), parts["msgid"], strs, flags


def test_every_string_is_translated_and_none_is_fuzzy():
    entries = list(po_entries())

    assert len(entries) > 100
    untranslated = [msgid for _, msgid, strs, _ in entries if not all(strs)]
    fuzzy = [msgid for _, msgid, _, flags in entries if "fuzzy" in flags]
    assert untranslated == []
    assert fuzzy == []


def test_the_compiled_catalogue_matches_the_source():
    with MO.open("rb") as handle:
        catalogue = gettext.GNUTranslations(handle)

    for context, msgid, strs, _ in po_entries():
        if context is None and len(strs) == 1:
            assert catalogue.gettext(msgid) == strs[0], msgid
