"""The photos of an identity check: what we accept, how we clean them, how we keep them.

``photo_check`` takes what a customer uploaded and either refuses it (``UploadRefused``, naming
the form field) or returns a ``CheckedPhoto``: the picture decoded and encoded again by Pillow.
Only JPEG and PNG are taken, recognised by their first bytes (never by the name or the type the
browser declared). The new encoding keeps the pixels only: EXIF (GPS, camera serial), XMP,
comments, ICC profiles and anything glued after the picture are gone, and the EXIF orientation is
applied first so the photo stays upright. Nothing here ever runs or renders the file: it is read
as bytes, measured, then decoded as an image, within limits checked before decoding.

The cleaned bytes are kept sealed (encrypted with the deployment's keys, ``seal_bytes``) in
Django's default storage under a random name (``identity_file_path``); ``identity_file_open``
reads one back in the clear for the operators' page.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.utils.translation import gettext as _
from PIL import Image, ImageOps

from apps.common.signing import UnsealError, seal_bytes, unseal_bytes
from apps.verification.errors import IdentityFileGone, UploadRefused
from apps.verification.models import IdentityCheck

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# A document photo whose short side is smaller than this cannot be read by anyone.
MIN_SHORT_SIDE_PX = 300
JPEG_QUALITY = 90
# Text that has no business in a photo: markup, scripts and documents a browser or a viewer
# would act on. Looked for (lower-cased) in the metadata and after the picture, so a JPEG that
# is also an HTML page, an SVG or a PDF (a polyglot) is refused even though it decodes as a
# picture. XMP metadata (``<x:xmpmeta``, ``<rdf:RDF``) is XML too: not in this list on purpose.
HOSTILE_MARKERS = (
    b"<script",
    b"<html",
    b"<svg",
    b"<?php",
    b"<!doctype",
    b"<iframe",
    b"<body",
    b"<object",
    b"<embed",
    b"javascript:",
    b"%pdf-",
)
# What may follow the end of a picture: phones append a video (motion photos) or padding, which
# the new encoding drops; an archive, a document, a program or markup there makes a polyglot.
HOSTILE_TRAILERS = (
    b"PK\x03\x04",
    b"%PDF",
    b"MZ",
    b"\x7fELF",
    b"#!",
    b"<",
    b"Rar!",
    b"7z\xbc\xaf",
    b"\x1f\x8b",
)
PHOTO_FIELDS = ("document", "selfie")


@dataclass(frozen=True)
class CheckedPhoto:
    """A photo we accept, encoded again: ``content`` holds nothing but the pixels."""

    content: bytes
    content_type: str  # image/jpeg or image/png
    width: int
    height: int


def photo_check(uploaded, *, field: str = "") -> CheckedPhoto:
    """Check an uploaded photo (a Django ``UploadedFile``, any file-like object, or bytes)
    and return it cleaned; raises ``UploadRefused`` naming ``field`` and the problem."""
    data = _read_bounded(uploaded, field=field)
    if not data:
        raise UploadRefused(_("The file is empty."), field=field)
    if data.startswith(JPEG_MAGIC):
        image_format, content_type = "JPEG", "image/jpeg"
        structure = _jpeg_structure(data)
    elif data.startswith(PNG_MAGIC):
        image_format, content_type = "PNG", "image/png"
        structure = _png_structure(data)
    else:
        raise UploadRefused(_("Only JPEG and PNG photos are accepted."), field=field)
    if structure is None:
        raise UploadRefused(_("This photo is damaged and cannot be read."), field=field)
    end, metadata = structure
    _refuse_hostile(metadata=metadata, trailer=data[end:], field=field)
    image = _decode(data, image_format=image_format, field=field)
    content = _encode(image, image_format=image_format)
    return CheckedPhoto(
        content=content, content_type=content_type, width=image.width, height=image.height
    )


def _read_bounded(uploaded, *, field: str) -> bytes:
    """At most one byte past the limit: enough to know a file is too big without reading it."""
    limit = settings.IDENTITY_UPLOAD_MAX_BYTES
    too_big = UploadRefused(
        _("This file is too large: photos of up to %(megabytes)d MB are accepted.")
        % {"megabytes": max(1, limit // (1024 * 1024))},
        field=field,
    )
    if uploaded is None:
        raise UploadRefused(_("No file was sent."), field=field)
    if isinstance(uploaded, bytes | bytearray):
        data = bytes(uploaded[: limit + 1])
    else:
        declared = getattr(uploaded, "size", None)
        if isinstance(declared, int) and declared > limit:
            raise too_big
        if hasattr(uploaded, "seek"):
            uploaded.seek(0)
        data = uploaded.read(limit + 1) or b""
    if len(data) > limit:
        raise too_big
    return data


def _jpeg_structure(data: bytes) -> tuple[int, bytes] | None:
    """Where the JPEG ends (just past its end-of-image marker) and its metadata (every segment
    but the compressed pixels), following its segments: an EXIF thumbnail has its own markers
    inside a segment, so searching for FFD9 would stop there. None when the structure is
    broken."""
    size = len(data)
    index = 2
    metadata: list[bytes] = []
    while index < size:
        if data[index] != 0xFF:
            return None
        while index < size and data[index] == 0xFF:  # fill bytes
            index += 1
        if index >= size:
            return None
        marker = data[index]
        index += 1
        if marker == 0xD9:  # end of image
            return index, b"".join(metadata)
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            continue
        if index + 2 > size:
            return None
        length = int.from_bytes(data[index : index + 2], "big")
        if length < 2:
            return None
        metadata.append(data[index : index + length])
        index += length
        if marker == 0xDA:  # start of scan: compressed data runs to the next real marker
            while True:
                found = data.find(b"\xff", index)
                if found < 0 or found + 1 >= size:
                    return None
                following = data[found + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:
                    index = found + 2
                    continue
                index = found
                break
    return None


def _png_structure(data: bytes) -> tuple[int, bytes] | None:
    """Where the PNG ends (just past its IEND chunk) and its metadata (every chunk but the
    compressed pixels); None when the chunks do not add up."""
    size = len(data)
    index = len(PNG_MAGIC)
    metadata: list[bytes] = []
    while index + 12 <= size:
        (length,) = struct.unpack(">I", data[index : index + 4])
        kind = data[index + 4 : index + 8]
        if kind not in (b"IDAT", b"fdAT"):
            metadata.append(data[index + 8 : index + 8 + length])
        index += 12 + length
        if index > size:
            return None
        if kind == b"IEND":
            return index, b"".join(metadata)
    return None


def _refuse_hostile(*, metadata: bytes, trailer: bytes, field: str) -> None:
    """Markup, scripts or documents in the metadata or after the picture make a polyglot.
    The compressed pixels are not searched: they are random-looking bytes in which a short
    marker turns up by chance (and no browser or viewer reads them as text)."""
    trailer = trailer.strip(b"\x00\r\n\t ")
    searched = (metadata + b"\n" + trailer).lower()
    if any(marker in searched for marker in HOSTILE_MARKERS) or trailer.startswith(
        HOSTILE_TRAILERS
    ):
        raise UploadRefused(
            _("This file is not a plain photo (it hides another kind of content)."),
            field=field,
        )


def _decode(data: bytes, *, image_format: str, field: str) -> Image.Image:
    """The picture decoded, upright; its size is checked from the header before any decoding,
    so a small file that would unfold into billions of pixels is refused cheaply."""
    damaged = UploadRefused(_("This photo is damaged and cannot be read."), field=field)
    too_many_pixels = UploadRefused(
        _("This photo has too many pixels. Please send a smaller one."), field=field
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=[image_format]) as probe:
                width, height = probe.size
                if width * height > settings.IDENTITY_UPLOAD_MAX_PIXELS:
                    raise too_many_pixels
                if min(width, height) < MIN_SHORT_SIDE_PX:
                    raise UploadRefused(
                        _(
                            "This photo is too small to be read: its shorter side must be "
                            "at least %(pixels)d pixels."
                        )
                        % {"pixels": MIN_SHORT_SIDE_PX},
                        field=field,
                    )
                probe.verify()
            image = Image.open(io.BytesIO(data), formats=[image_format])
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise too_many_pixels from error
        except UploadRefused:
            raise
        except Exception as error:
            # Pillow says "damaged" in many ways (OSError, SyntaxError, ValueError,
            # struct.error...); a decoder tripping on a crafted file is a bad file as well.
            raise damaged from error
    try:
        upright = ImageOps.exif_transpose(image)
    except Exception:  # unreadable EXIF: keep the picture as it was taken
        upright = image
    return upright if upright is not None else image


def _encode(image: Image.Image, *, image_format: str) -> bytes:
    """Pixels only, in a new file: a fresh image carries no ``info`` (EXIF, XMP, comment,
    ICC profile), so the encoder has nothing to copy."""
    if image_format == "JPEG":
        mode = "L" if image.mode in ("L", "1") else "RGB"
    elif image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        mode = "RGBA"
    else:
        mode = "L" if image.mode in ("L", "1") else "RGB"
    pixels = image.convert(mode) if image.mode != mode else image
    clean = Image.frombytes(mode, pixels.size, pixels.tobytes())
    output = io.BytesIO()
    if image_format == "JPEG":
        clean.save(output, format="JPEG", quality=JPEG_QUALITY)
    else:
        clean.save(output, format="PNG")
    return output.getvalue()


# --- storage -----------------------------------------------------------------------------


def identity_file_store(*, check: IdentityCheck, which: str, photo: CheckedPhoto) -> str:
    """Seal ``photo`` and save it in the storage of ``check``'s ``which`` field (``document``
    or ``selfie``) under a fresh random name; returns the stored name. The check itself is not
    saved: the caller records the name in its own transaction."""
    field = IdentityCheck._meta.get_field(_field_name(which))
    name = field.generate_filename(check, which)
    return field.storage.save(name, ContentFile(seal_bytes(photo.content)))


def identity_file_delete(name: str) -> None:
    """Remove one stored file; a file already gone is not an error (a sweep may run twice)."""
    if name:
        IdentityCheck._meta.get_field("document_file").storage.delete(name)


def identity_file_open(check: IdentityCheck, which: str) -> tuple[bytes, str]:
    """The ``which`` photo (``document`` or ``selfie``) of ``check``, decrypted, with its
    content type; raises ``IdentityFileGone`` once deleted (or never sent)."""
    stored = getattr(check, _field_name(which))
    content_type = getattr(check, f"{which}_content_type")
    if check.files_deleted_at is not None or not stored.name:
        raise IdentityFileGone()
    try:
        with stored.storage.open(stored.name, "rb") as handle:
            sealed = handle.read()
        return unseal_bytes(sealed), content_type
    except (FileNotFoundError, UnsealError) as error:
        raise IdentityFileGone() from error


def _field_name(which: str) -> str:
    if which not in PHOTO_FIELDS:
        raise ValueError(f"no identity photo called {which!r}")
    return f"{which}_file"
