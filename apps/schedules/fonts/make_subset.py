"""Regenerate the receipt font: a small subset of DejaVu Sans (regular and bold).

    .venv/bin/python apps/schedules/fonts/make_subset.py [--source-dir DIR]

Reads DejaVuSans.ttf and DejaVuSans-Bold.ttf (Debian's fonts-dejavu-core, version 2.37, in
/usr/share/fonts/truetype/dejavu/ by default) and writes, beside this script:

- ``TrancheReceiptSans-Regular.ttf`` and ``TrancheReceiptSans-Bold.ttf``: the glyphs for
  Latin-1, the euro sign and the punctuation French and English receipts use (see
  ``CODEPOINTS``), with their kerning and ligatures, without hinting (a PDF does not need
  it). Renamed "Tranche Receipt Sans" so nobody takes the subset for the whole DejaVu Sans
  (the licence allows changes under any name without "Bitstream", "Vera" or "Arev").
- ``LICENSE``: the licence text the fonts carry (their name record 13), verbatim.

Why: WeasyPrint embeds in every PDF a subset of each font it used, cut at every render.
With this font the receipts (apps.schedules.receipts) never reach for system fonts, and
each cut starts from 30 KB instead of DejaVu's 760 KB. Run again after adding a character
the receipt may print (a missing one falls back to a system font: the receipts' tests
check that the PDFs embed this font only); the output is the same bytes for the same
source fonts (timestamps kept).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

HERE = Path(__file__).resolve().parent
SOURCE_DIR = Path("/usr/share/fonts/truetype/dejavu")
FAMILY = "Tranche Receipt Sans"
FACES = {  # source file -> (output file, style name)
    "DejaVuSans.ttf": ("TrancheReceiptSans-Regular.ttf", "Regular"),
    "DejaVuSans-Bold.ttf": ("TrancheReceiptSans-Bold.ttf", "Bold"),
}
CODEPOINTS = sorted(
    {
        *range(0x20, 0x7F),  # ASCII
        *range(0xA0, 0x100),  # Latin-1: accents, guillemets, no-break space, middle dot
        0x0152,  # OE ligature
        0x0153,  # oe ligature
        0x0178,  # Y with diaeresis
        0x2009,  # thin space
        0x2010,  # hyphen
        0x2011,  # non-breaking hyphen
        0x2013,  # en dash
        0x2014,  # em dash
        0x2018,  # left single quotation mark
        0x2019,  # right single quotation mark (the French apostrophe)
        0x201C,  # left double quotation mark
        0x201D,  # right double quotation mark
        0x2022,  # bullet (the masked card number)
        0x2026,  # ellipsis
        0x2039,  # single left angle quotation mark
        0x203A,  # single right angle quotation mark
        0x202F,  # narrow no-break space (French thousands, before ; : ! ?)
        0x20AC,  # euro sign
        0x2116,  # numero sign
        0x2212,  # minus sign
    }
)
LICENSE_NAME_ID = 13


def subset_face(source: Path, target: Path, style: str) -> None:
    options = subset.Options()
    options.hinting = False
    options.desubroutinize = True
    options.notdef_outline = True
    options.name_IDs = ["*"]  # keep the copyright and the licence in the font
    options.name_languages = [0x409]
    options.name_legacy = True
    options.drop_tables += ["FFTM", "MATH"]
    options.layout_features = ["kern", "liga", "clig", "calt", "ccmp", "locl", "mark", "mkmk"]
    font = TTFont(source, recalcTimestamp=False)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=CODEPOINTS)
    subsetter.subset(font)
    # The records that name the font are replaced; the copyright (0), the licence (13, 14)
    # and the others are kept.
    postscript = f"{FAMILY.replace(' ', '')}-{style}"
    full = f"{FAMILY} {style}" if style != "Regular" else FAMILY
    names = {1: FAMILY, 3: postscript, 4: full, 6: postscript, 16: FAMILY}
    for record in font["name"].names:
        if record.nameID in names:
            record.string = names[record.nameID]
    font.save(target)


def license_text(source: Path) -> str:
    record = TTFont(source)["name"].getName(LICENSE_NAME_ID, 3, 1, 0x409)
    if record is None:
        raise SystemExit(f"{source} carries no licence text (name record 13)")
    return record.toUnicode().rstrip() + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source-dir", type=Path, default=SOURCE_DIR)
    args = parser.parse_args(argv)
    for source_name, (target_name, style) in FACES.items():
        source = args.source_dir / source_name
        target = HERE / target_name
        subset_face(source, target, style)
        sys.stdout.write(f"{target.name}: {target.stat().st_size:,} bytes from {source}\n")
    regular = args.source_dir / next(iter(FACES))
    (HERE / "LICENSE").write_text(
        "The fonts in this folder are subsets of DejaVu Sans 2.37 (regular and bold), renamed\n"
        f'"{FAMILY}" (made by make_subset.py). Their licence, as DejaVu ships it:\n\n'
        + license_text(regular)
    )
    sys.stdout.write("LICENSE written\n")


if __name__ == "__main__":
    main()
