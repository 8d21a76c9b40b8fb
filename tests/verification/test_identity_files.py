"""Identity photos: what is refused, and what an accepted photo becomes once cleaned."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation
from PIL import Image, ImageFile

from apps.common.errors import DomainError
from apps.verification.errors import UploadRefused
from apps.verification.identity_files import CheckedPhoto, photo_check


@pytest.fixture(autouse=True)
def _english():
    """Messages are checked in English (the site's default language is French)."""
    with translation.override("en"):
        yield


TEST_FILES = Path(__file__).resolve().parents[2] / "docs" / "test-files" / "identity"
GPS_IFD = 0x8825
ORIENTATION = 0x0112


def picture(
    size=(800, 500), colour=(46, 160, 67), *, image_format="JPEG", mode="RGB", **save
) -> bytes:
    output = io.BytesIO()
    Image.new(mode, size, colour).save(output, format=image_format, **save)
    return output.getvalue()


def upload(content: bytes, name="photo.jpg", content_type="image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=content_type)


def refusal(content, **kwargs) -> UploadRefused:
    with pytest.raises(UploadRefused) as caught:
        photo_check(upload(content) if isinstance(content, bytes) else content, **kwargs)
    return caught.value


def decoded(photo: CheckedPhoto) -> Image.Image:
    image = Image.open(io.BytesIO(photo.content))
    image.load()
    return image


class CountingFile(io.BytesIO):
    """A file that remembers how many bytes were read from it."""

    bytes_read = 0

    def read(self, size=-1):
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


# --- accepted ----------------------------------------------------------------------------


def test_a_jpeg_is_accepted_and_encoded_again():
    original = picture()

    photo = photo_check(upload(original), field="document")

    assert photo.content_type == "image/jpeg"
    assert (photo.width, photo.height) == (800, 500)
    assert photo.content != original
    assert decoded(photo).format == "JPEG"
    assert decoded(photo).size == (800, 500)


def test_a_png_is_accepted_and_stays_a_png():
    photo = photo_check(upload(picture(image_format="PNG"), name="scan.png"))

    assert photo.content_type == "image/png"
    assert decoded(photo).format == "PNG"


def test_the_type_comes_from_the_bytes_not_from_the_name_or_the_declared_type():
    png_named_as_jpeg = upload(picture(image_format="PNG"), name="x.jpg", content_type="image/jpeg")
    jpeg_named_as_png = upload(picture(), name="x.png", content_type="image/png")

    assert photo_check(png_named_as_jpeg).content_type == "image/png"
    assert photo_check(jpeg_named_as_png).content_type == "image/jpeg"


def test_a_photo_may_come_as_bytes_or_any_file_object():
    assert photo_check(picture()).content_type == "image/jpeg"
    assert photo_check(io.BytesIO(picture())).content_type == "image/jpeg"


def test_a_file_already_read_is_read_again_from_its_start():
    uploaded = upload(picture())
    uploaded.read()

    assert photo_check(uploaded).width == 800


def test_exif_gps_comments_and_profiles_are_stripped():
    exif = Image.Exif()
    exif[0x010F] = "SpyCam Inc."  # camera maker
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)})
    original = picture(
        exif=exif.tobytes(), comment=b"secret comment", icc_profile=b"\x00" * 200, quality=95
    )
    assert Image.open(io.BytesIO(original)).getexif()  # the test photo has them

    photo = photo_check(upload(original))

    cleaned = decoded(photo)
    assert not cleaned.getexif()
    assert "exif" not in cleaned.info
    assert "comment" not in cleaned.info
    assert "icc_profile" not in cleaned.info
    assert b"SpyCam" not in photo.content
    assert b"secret comment" not in photo.content


def test_png_text_chunks_are_stripped():
    from PIL import PngImagePlugin

    text = PngImagePlugin.PngInfo()
    text.add_text("Author", "Someone Private")
    original = picture(image_format="PNG", pnginfo=text)

    photo = photo_check(upload(original, name="x.png"))

    assert b"Someone Private" not in photo.content
    assert decoded(photo).text == {}


def test_the_exif_orientation_is_applied_before_it_is_dropped():
    # Stored 600 wide x 400 high, red on the left half; orientation 6 means "turn 90° clockwise
    # to show": the photo as seen is 400 x 600 with red on the top half.
    image = Image.new("RGB", (600, 400), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 300, 400))
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    output = io.BytesIO()
    image.save(output, format="JPEG", exif=exif.tobytes())

    photo = photo_check(upload(output.getvalue()))

    cleaned = decoded(photo).convert("RGB")
    assert cleaned.size == (400, 600)
    assert ORIENTATION not in cleaned.getexif()
    top_red, _, top_blue = cleaned.getpixel((200, 100))
    bottom_red, _, bottom_blue = cleaned.getpixel((200, 500))
    assert top_red > 200 and top_blue < 60
    assert bottom_blue > 200 and bottom_red < 60


def test_a_photo_with_harmless_data_after_its_end_is_accepted_without_that_data():
    # Phones append a short video after the picture ("motion photos").
    trailer = b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 500
    photo = photo_check(upload(picture() + trailer))

    assert b"ftypmp42" not in photo.content


def test_photos_with_other_colour_modes_are_accepted():
    for mode, colour in (("L", 128), ("CMYK", (0, 80, 80, 0)), ("RGBA", (10, 20, 30, 128))):
        image_format = "PNG" if mode == "RGBA" else "JPEG"
        photo = photo_check(upload(picture(mode=mode, colour=colour, image_format=image_format)))

        assert decoded(photo).size == (800, 500)


def test_the_shipped_test_documents_are_accepted():
    for name in ("id-approved.jpg", "id-rejected.jpg", "id-retake.jpg", "selfie.jpg"):
        assert photo_check(upload((TEST_FILES / name).read_bytes())).content_type == "image/jpeg"


# --- refused -----------------------------------------------------------------------------


def test_refusals_are_domain_errors_naming_the_field():
    refused = refusal(b"", field="selfie")

    assert isinstance(refused, DomainError)
    assert refused.code == "upload_refused"
    assert refused.http_status == 400
    assert refused.field == "selfie"
    assert refused.extra == {"field": "selfie"}


def test_an_empty_file_is_refused():
    assert refusal(b"").message == "The file is empty."


def test_no_file_is_refused():
    assert refusal(None).message == "No file was sent."


@pytest.mark.parametrize(
    "content",
    [
        picture(image_format="GIF"),
        picture(image_format="WEBP"),
        picture(image_format="BMP"),
        picture(image_format="TIFF"),
        b"\x00\x00\x00\x18ftypheic" + b"\x00" * 400,
        b"just some text, named photo.jpg",
    ],
    ids=["gif", "webp", "bmp", "tiff", "heic", "text"],
)
def test_anything_but_jpeg_and_png_is_refused(content):
    assert refusal(content).message == "Only JPEG and PNG photos are accepted."


def test_an_svg_is_refused():
    svg = (
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="800" '
        b'height="500"><script>alert(1)</script><rect width="800" height="500"/></svg>'
    )

    assert refusal(upload(svg, name="id.svg", content_type="image/svg+xml")).message == (
        "Only JPEG and PNG photos are accepted."
    )


def test_an_html_page_named_jpg_is_refused():
    fake = (TEST_FILES / "fake.jpg").read_bytes()

    assert refusal(fake).message == "Only JPEG and PNG photos are accepted."


def test_a_pdf_is_refused():
    assert refusal(b"%PDF-1.7\n1 0 obj <<>> endobj\n%%EOF").message == (
        "Only JPEG and PNG photos are accepted."
    )


def test_an_oversized_file_is_refused_reading_one_byte_past_the_limit(settings):
    settings.IDENTITY_UPLOAD_MAX_BYTES = 5_000
    big = CountingFile(picture() + b"\x00" * 50_000)

    refused = refusal(big)

    assert refused.message == "This file is too large: photos of up to 1 MB are accepted."
    assert big.bytes_read == 5_001


def test_a_file_of_exactly_the_limit_is_accepted(settings):
    content = picture()
    settings.IDENTITY_UPLOAD_MAX_BYTES = len(content)

    assert photo_check(upload(content)).width == 800


def test_a_declared_size_over_the_limit_is_refused_without_reading(settings):
    settings.IDENTITY_UPLOAD_MAX_BYTES = 10_000
    uploaded = upload(picture())
    uploaded.size = 20_000
    uploaded.file = CountingFile(uploaded.file.getvalue())

    refusal(uploaded)

    assert uploaded.file.bytes_read == 0


def test_a_truncated_jpeg_is_refused():
    noisy = Image.effect_noise((800, 500), 80).convert("RGB")
    output = io.BytesIO()
    noisy.save(output, format="JPEG")
    content = output.getvalue()

    refused = refusal(content[: len(content) // 2])

    assert refused.message == "This photo is damaged and cannot be read."


def test_a_jpeg_whose_segments_do_not_add_up_is_refused():
    content = picture()
    broken = content[:2] + b"\xff\xe0\x00\x01" + content[2:]  # a segment of length 1

    assert refusal(broken).message == "This photo is damaged and cannot be read."


def test_a_png_with_a_wrong_checksum_is_refused():
    content = bytearray(picture(image_format="PNG"))
    idat = content.index(b"IDAT")
    content[idat + 8] ^= 0xFF  # a flipped byte in the compressed pixels

    assert refusal(bytes(content)).message == "This photo is damaged and cannot be read."


def test_a_truncated_png_is_refused():
    content = picture(image_format="PNG")

    assert refusal(content[: len(content) - 20]).message == (
        "This photo is damaged and cannot be read."
    )


def test_a_decompression_bomb_is_refused_before_anything_is_decoded(monkeypatch):
    def no_decoding(self):
        raise AssertionError("a pixel was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    bomb = (TEST_FILES / "bomb.png").read_bytes()
    assert len(bomb) < 100_000  # small on disk, 400 million pixels once decoded

    assert refusal(bomb).message == "This photo has too many pixels. Please send a smaller one."


def test_a_jpeg_with_too_many_pixels_is_refused(settings):
    settings.IDENTITY_UPLOAD_MAX_PIXELS = 800 * 500 - 1

    assert refusal(picture()).message == (
        "This photo has too many pixels. Please send a smaller one."
    )


def test_a_bomb_over_pillows_own_limit_is_refused_as_too_many_pixels(settings, monkeypatch):
    settings.IDENTITY_UPLOAD_MAX_PIXELS = 10**12  # only Pillow's own guard is left
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 800 * 500 // 3)

    assert refusal(picture()).message == (
        "This photo has too many pixels. Please send a smaller one."
    )


def test_a_photo_too_small_to_read_is_refused():
    tiny = (TEST_FILES / "tiny.jpg").read_bytes()

    assert refusal(tiny).message == (
        "This photo is too small to be read: its shorter side must be at least 300 pixels."
    )
    assert refusal(picture(size=(1000, 299))).message.startswith("This photo is too small")
    assert photo_check(upload(picture(size=(1000, 300)))).height == 300


@pytest.mark.parametrize(
    "tail",
    [
        b"<html><body><script>alert(1)</script></body></html>",
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 30,
        b"%PDF-1.4\n%%EOF",
        b"<?php system($_GET['c']); ?>",
    ],
    ids=["html", "zip", "pdf", "php"],
)
def test_a_photo_that_is_also_something_else_is_refused(tail):
    refused = refusal(picture() + tail)

    assert refused.message == "This file is not a plain photo (it hides another kind of content)."


def test_the_shipped_polyglot_is_refused():
    assert refusal((TEST_FILES / "polyglot.jpg").read_bytes()).message.startswith(
        "This file is not a plain photo"
    )


def test_script_hidden_in_a_jpeg_comment_is_refused():
    content = picture(comment=b"<script>fetch('//evil')</script>")

    assert refusal(content).message.startswith("This file is not a plain photo")


def test_script_hidden_in_a_png_text_chunk_is_refused():
    body = b"Comment\x00<svg onload=alert(1)>"
    content = picture(image_format="PNG")
    iend = content.rindex(b"IEND") - 4
    chunk = (
        struct.pack(">I", len(body))
        + b"tEXt"
        + body
        + struct.pack(">I", zlib.crc32(b"tEXt" + body) & 0xFFFFFFFF)
    )

    refused = refusal(content[:iend] + chunk + content[iend:])

    assert refused.message.startswith("This file is not a plain photo")


def test_xmp_metadata_is_not_mistaken_for_markup():
    xmp = (
        b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
        b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>'
        b'<?xpacket end="w"?>'
    )

    photo = photo_check(upload(picture(xmp=xmp)))

    assert b"xmpmeta" not in photo.content


def test_markers_are_not_searched_in_the_compressed_pixels():
    # Noise compresses to random-looking bytes; plant "<svg" in the scan data itself, where a
    # chance match is likely in a large photo, and in no metadata.
    output = io.BytesIO()
    Image.effect_noise((800, 500), 90).convert("RGB").save(output, format="JPEG")
    content = bytearray(output.getvalue())
    scan = content.index(b"\xff\xda")
    start = scan + 2 + int.from_bytes(content[scan + 2 : scan + 4], "big") + 1000
    content[start : start + 4] = b"<svg"

    photo = photo_check(upload(bytes(content)))

    assert photo.content_type == "image/jpeg"
