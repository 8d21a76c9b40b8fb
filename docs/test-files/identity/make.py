"""Make the identity test photos again: ``python docs/test-files/identity/make.py``.

The sandbox identity provider (``apps/verification/identity_sandbox.py``) picks its answer by
the colour that covers most of the document photo, never by the file's name, so these files
can be renamed freely. Colours must stay in step with ``SCENARIO_COLOURS`` there.

- ``id-approved.jpg`` (green): approved, the names the customer gave are read back;
- ``id-rejected.jpg`` (red): rejected as a forged document (``document_forged``);
- ``id-retake.jpg`` (amber): unreadable, the customer is asked for new photos;
- ``id-other-person.jpg`` (blue): the provider approves a document of Camille Durand, born
  1979-03-14; Tranche rejects it as ``identity_mismatch``;
- ``id-timeout.jpg`` (purple): the provider times out (the customer may try again);
- ``selfie.jpg``: a selfie for any of them (any other photo is approved as a document too);
- hostile samples Tranche refuses before any provider sees them: ``polyglot.jpg`` (a real
  JPEG followed by an HTML page with a script), ``fake.jpg`` (an HTML page named .jpg),
  ``bomb.png`` (about 50 KB, but 20,000 x 20,000 pixels once decoded), ``tiny.jpg``
  (120 x 80 pixels, too small to read).
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent
SIZE = (800, 500)
DOCUMENTS = {
    "id-approved.jpg": ((46, 160, 67), "APPROVED"),
    "id-rejected.jpg": ((200, 40, 40), "REJECTED"),
    "id-retake.jpg": ((240, 180, 0), "RETAKE"),
    "id-other-person.jpg": ((40, 90, 200), "OTHER PERSON"),
    "id-timeout.jpg": ((130, 50, 160), "TIMEOUT"),
}
POLYGLOT_TAIL = b"<html><body><script>alert(document.cookie)</script></body></html>\n"


def document(colour: tuple[int, int, int], label: str) -> bytes:
    """A plain-coloured identity card with a label, as a JPEG."""
    image = Image.new("RGB", SIZE, colour)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    draw.rectangle((40, 40, 760, 460), outline="white", width=4)
    draw.rectangle((70, 120, 250, 340), outline="white", width=3)  # where a portrait goes
    draw.text((70, 70), "TRANCHE TEST IDENTITY CARD", fill="white", font=font)
    draw.text((290, 140), f"SANDBOX: {label}", fill="white", font=font)
    draw.text((290, 190), "NOT A REAL DOCUMENT", fill="white", font=font)
    return jpeg(image)


def selfie() -> bytes:
    image = Image.new("RGB", (600, 800), (225, 225, 230))
    draw = ImageDraw.Draw(image)
    draw.ellipse((170, 150, 430, 480), fill=(222, 184, 150))  # a face
    draw.rectangle((120, 520, 480, 800), fill=(70, 90, 120))  # shoulders
    return jpeg(image)


def jpeg(image: Image.Image) -> bytes:
    output = io.BytesIO()
    image.save(output, format="JPEG", quality=90)
    return output.getvalue()


def png_bomb(side: int = 20_000) -> bytes:
    """A valid 1-bit PNG of ``side`` x ``side`` black pixels, written row by row so making it
    never holds the picture in memory."""
    compressor = zlib.compressobj(9)
    row = b"\x00" + bytes((side + 7) // 8)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def main() -> None:
    for name, (colour, label) in DOCUMENTS.items():
        (HERE / name).write_bytes(document(colour, label))
    (HERE / "selfie.jpg").write_bytes(selfie())
    (HERE / "polyglot.jpg").write_bytes(document((46, 160, 67), "POLYGLOT") + POLYGLOT_TAIL)
    (HERE / "fake.jpg").write_bytes(b"<!DOCTYPE html>\n" + POLYGLOT_TAIL)
    (HERE / "bomb.png").write_bytes(png_bomb())
    (HERE / "tiny.jpg").write_bytes(jpeg(Image.new("RGB", (120, 80), (46, 160, 67))))


if __name__ == "__main__":
    main()
