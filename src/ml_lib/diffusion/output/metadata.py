"""Image metadata: the A1111 infotext and our plan JSON, written into and read from PNG, JPEG and WebP.

- PNG: text chunk ``parameters`` (the infotext, as A1111 writes it; iTXt when not latin-1) and a
  compressed chunk ``ml_diffusion_plan`` (``plan.to_json()``), and ``ml_diffusion_id`` (the history's
  generation id: 32 hex digits, apart from the plan, so a reproduced plan gets its own id).
- JPEG / WebP: EXIF UserComment (0x9286 in the Exif IFD) as A1111 writes it with piexif,
  ``b"UNICODE\\0" + utf-16-be``, and EXIF MakerNote (0x927C) as ``b"ml-diffusion-plan\\0" + json``.
  Both tags are stored with the EXIF type UNDEFINED, which piexif (and so A1111) requires. The generation
  id is the standard EXIF ImageUniqueID (0xA420, ASCII, 32 hex digits).
"""

from __future__ import annotations

import logging
import os
import re
import stat
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image, JpegImagePlugin, PngImagePlugin

from ..errors import MetadataError, OutputError, PlanError, RequestError
from ..plan import GenerationPlan
from ._containers import PNG_SIGNATURE, Container, Truncated, read_png, read_webp
from .foreign import ForeignMetadata, read_foreign
from .infotext import Infotext, parse_infotext

__all__ = [
    "FORMATS",
    "PLAN_CHUNK",
    "ImageMetadata",
    "SaveOptions",
    "decode_user_comment",
    "encode_user_comment",
    "image_save_kwargs",
    "normalize_format",
    "read_metadata",
]

logger = logging.getLogger(__name__)

PLAN_CHUNK = "ml_diffusion_plan"
ID_CHUNK = "ml_diffusion_id"
INFOTEXT_CHUNK = "parameters"
PLAN_PREFIX = b"ml-diffusion-plan\0"
_EXIF_IFD = 0x8769
_USER_COMMENT = 0x9286
_MAKER_NOTE = 0x927C
_IMAGE_UNIQUE_ID = 0xA420
_ID_RE = re.compile(r"[0-9a-f]{32}")
_UNICODE = b"UNICODE\0"
_ASCII = b"ASCII\0\0\0"
_JIS = b"JIS\0\0\0\0\0"
_UNDEFINED_PREFIX = b"\0" * 8
_TYPE_BYTE, _TYPE_UNDEFINED = 1, 7
_JPEG_MAX_EXIF = 65533  # one APP1 marker; Pillow refuses more
_DEFAULT_QUALITY = 90

#: Accepted format names → (Pillow format, file extension).
FORMATS: dict[str, tuple[str, str]] = {
    "png": ("PNG", ".png"),
    "jpg": ("JPEG", ".jpg"),
    "jpeg": ("JPEG", ".jpg"),
    "webp": ("WEBP", ".webp"),
}


@dataclass(frozen=True, slots=True)
class SaveOptions:
    """What ``Image.save`` needs to write one image with its metadata."""

    format: str
    extension: str
    text_chunks: tuple[tuple[str, str], ...] = ()
    exif: bytes | None = None
    quality: int | None = None

    def save(self, image: Image.Image, fp: BinaryIO) -> None:
        """Encode ``image`` into ``fp`` (JPEG gets an RGB copy when the image has alpha or a palette)."""
        params: dict[str, object] = {}
        if self.text_chunks:
            info = PngImagePlugin.PngInfo()
            for key, value in self.text_chunks:
                info.add_text(key, value, zip=key == PLAN_CHUNK)
            params["pnginfo"] = info
        if self.exif is not None:
            params["exif"] = self.exif
        if self.quality is not None:
            params["quality"] = self.quality
        if self.format == "JPEG" and image.mode not in ("RGB", "L", "CMYK"):
            logger.debug("converting %s image to RGB for JPEG", image.mode)
            image = image.convert("RGB")
        image.save(fp, format=self.format, **params)


@dataclass(frozen=True, slots=True)
class ImageMetadata:
    """What an image carries: its infotext (raw and parsed) and our plan, if any."""

    format: str
    width: int
    height: int
    infotext: str | None = None
    parsed: Infotext | None = None
    plan: GenerationPlan | None = None
    plan_error: str | None = None
    generation_id: str | None = None
    #: Another tool's settings (A1111, Forge, SD.Next, ComfyUI, InvokeAI, Fooocus) when there is no plan.
    foreign: ForeignMetadata | None = None
    #: Why that tool's metadata could not be read (malformed graph or JSON), one line.
    foreign_error: str | None = None


def normalize_format(fmt: str) -> tuple[str, str]:
    """``"png"``, ``".JPG"``, ``"webp"`` … → (Pillow format, extension); RequestError for others."""
    key = fmt.strip().lower().lstrip(".")
    try:
        return FORMATS[key]
    except KeyError:
        raise RequestError(
            f"Unsupported image format {fmt!r}; choose one of: png, jpeg (jpg), webp."
        ) from None


def encode_user_comment(text: str) -> bytes:
    """EXIF UserComment bytes as piexif's ``UserComment.dump(text, encoding="unicode")`` makes them."""
    return _UNICODE + text.encode("utf-16-be")


def decode_user_comment(raw: bytes) -> str | None:
    """Text of an EXIF UserComment: UNICODE (big- or little-endian UTF-16), ASCII, JIS or raw UTF-8."""
    prefix, body = raw[:8], raw[8:]
    if prefix == _UNICODE:
        text = _decode_utf16(body)
    elif prefix in (_ASCII, _UNDEFINED_PREFIX):
        text = body.decode("utf-8", errors="replace")
    elif prefix == _JIS:
        text = body.decode("shift_jis", errors="replace")
    else:
        text = raw.decode("utf-8", errors="replace")
    text = text.strip("\0")
    return text or None


def _decode_utf16(body: bytes) -> str:
    if body[:2] == b"\xfe\xff":
        return body[2:].decode("utf-16-be", errors="replace")
    if body[:2] == b"\xff\xfe":
        return body[2:].decode("utf-16-le", errors="replace")
    # No BOM: ASCII-range text has its zero bytes first in big-endian, second in little-endian.
    even_zeros = body[0::2].count(0)
    odd_zeros = body[1::2].count(0)
    encoding = "utf-16-le" if odd_zeros > even_zeros else "utf-16-be"
    return body.decode(encoding, errors="replace")


def image_save_kwargs(
    fmt: str,
    infotext: str,
    plan_json: str | None,
    *,
    quality: int = _DEFAULT_QUALITY,
    generation_id: str | None = None,
    extra_chunks: tuple[tuple[str, str], ...] = (),
) -> SaveOptions:
    """The save options that embed ``infotext`` (and ``plan_json``, ``generation_id`` when given).

    ``extra_chunks`` are further PNG text chunks (the ComfyUI graph); other formats leave them out.
    """
    pillow_format, extension = normalize_format(fmt)
    if generation_id is not None and not _ID_RE.fullmatch(generation_id):
        raise OutputError(f"Generation id {generation_id!r} is not 32 lowercase hex digits.")
    if pillow_format == "PNG":
        chunks = [(INFOTEXT_CHUNK, infotext)]
        if plan_json is not None:
            chunks.append((PLAN_CHUNK, plan_json))
        if generation_id is not None:
            chunks.append((ID_CHUNK, generation_id))
        chunks.extend(extra_chunks)
        return SaveOptions(pillow_format, extension, text_chunks=tuple(chunks))
    exif = _exif_bytes(infotext, plan_json, generation_id)
    if pillow_format == "JPEG" and len(exif) > _JPEG_MAX_EXIF and plan_json is not None:
        logger.warning(
            "Plan JSON does not fit in JPEG EXIF (%d bytes > %d); saving the infotext only. "
            "Save as PNG or WebP to keep the plan.",
            len(exif),
            _JPEG_MAX_EXIF,
        )
        exif = _exif_bytes(infotext, None, generation_id)
    if pillow_format == "JPEG" and len(exif) > _JPEG_MAX_EXIF:
        raise OutputError(
            f"The infotext ({len(infotext)} characters) is too long for JPEG EXIF (64 KB); "
            "save as PNG or WebP instead."
        )
    return SaveOptions(pillow_format, extension, exif=exif, quality=quality)


def _exif_bytes(infotext: str, plan_json: str | None, generation_id: str | None = None) -> bytes:
    exif = Image.Exif()
    ifd = exif.get_ifd(_EXIF_IFD)
    ifd[_USER_COMMENT] = encode_user_comment(infotext)
    if generation_id is not None:
        ifd[_IMAGE_UNIQUE_ID] = generation_id
    if plan_json is not None:
        ifd[_MAKER_NOTE] = PLAN_PREFIX + plan_json.encode("utf-8")
    return _retype_undefined(exif.tobytes(), (_USER_COMMENT, _MAKER_NOTE))


def _retype_undefined(data: bytes, tags: tuple[int, ...]) -> bytes:
    """Mark ``tags`` of the Exif IFD as UNDEFINED (7).

    Pillow stores ``bytes`` values of tags it has no type for as BYTE (1); the layout of BYTE and
    UNDEFINED is identical, only the type field differs, but piexif returns BYTE values as a tuple of
    ints, which breaks A1111's reader.
    """
    buf = bytearray(data)
    base = 6  # b"Exif\0\0"
    order = {b"MM": ">", b"II": "<"}.get(bytes(buf[base : base + 2]))
    if order is None:
        raise OutputError("Pillow produced EXIF data without a TIFF header; update Pillow.")
    exif_offset = _find_entry(buf, base, order, struct.unpack_from(order + "I", buf, base + 4)[0], _EXIF_IFD)
    if exif_offset is None:
        raise OutputError("Pillow produced EXIF data without an Exif IFD; update Pillow.")
    ifd_offset = struct.unpack_from(order + "I", buf, exif_offset + 8)[0]
    count = struct.unpack_from(order + "H", buf, base + ifd_offset)[0]
    for i in range(count):
        entry = base + ifd_offset + 2 + 12 * i
        tag, typ = struct.unpack_from(order + "HH", buf, entry)
        if tag in tags and typ == _TYPE_BYTE:
            struct.pack_into(order + "H", buf, entry + 2, _TYPE_UNDEFINED)
    return bytes(buf)


def _find_entry(buf: bytearray, base: int, order: str, ifd_offset: int, wanted: int) -> int | None:
    count = struct.unpack_from(order + "H", buf, base + ifd_offset)[0]
    for i in range(count):
        entry = base + ifd_offset + 2 + 12 * i
        if struct.unpack_from(order + "H", buf, entry)[0] == wanted:
            return entry
    return None


def read_metadata(source: str | os.PathLike[str] | BinaryIO) -> ImageMetadata:
    """Read the infotext and plan of an image file (path or binary file object), decoding no pixel.

    PNG and WebP are read chunk by chunk, JPEG up to its first scan; so an image of any size (even above
    Pillow's decompression-bomb limit) gives its text at once. Each text chunk is read up to 1 MiB
    (longer ones are skipped with a warning). An image without metadata gives ``None`` fields. A file
    that cannot be read, is not a regular file, is not an image or is truncated raises
    :class:`MetadataError`. A plan chunk that does not parse sets ``plan_error``.
    """
    name = (
        os.fspath(source) if isinstance(source, (str, os.PathLike)) else getattr(source, "name", "<stream>")
    )
    try:
        with _opened(source, name) as fp:
            raw, comment = _read_container(fp, name)
        exif = _exif(raw.exif)
        exif_infotext, exif_plan = _from_exif(exif)
    except FileNotFoundError as exc:
        raise MetadataError(f"Cannot read {name}: the file does not exist.") from exc
    except Image.UnidentifiedImageError as exc:
        raise MetadataError(f"{name} is not an image Pillow can read (expected PNG, JPEG or WebP).") from exc
    except Image.DecompressionBombError as exc:
        raise MetadataError(f"{name} is too large to open safely: {exc}") from exc
    except Truncated as exc:
        raise MetadataError(f"{name} is truncated or damaged: {exc}.") from exc
    except OSError as exc:
        if exc.errno is not None:
            raise MetadataError(f"Cannot read {name}: {exc.strerror or exc}.") from exc
        raise MetadataError(f"{name} is truncated or damaged: {exc}.") from exc
    except (SyntaxError, EOFError, ValueError, struct.error) as exc:
        raise MetadataError(f"{name} is truncated or damaged: {exc or type(exc).__name__}.") from exc

    infotext, plan_text = _from_png_text(raw.text)
    infotext = infotext or exif_infotext or _comment_text(comment)
    plan_text = plan_text or exif_plan
    plan, plan_error = _parse_plan(plan_text, name)
    parsed = parse_infotext(infotext) if infotext else None
    foreign = foreign_error = None
    if plan is None:
        try:
            foreign = read_foreign(raw.text, infotext, parsed)
        except MetadataError as exc:
            foreign_error = str(exc)
            logger.warning("%s: %s", name, exc)
    return ImageMetadata(
        format=raw.format,
        width=raw.width,
        height=raw.height,
        infotext=infotext,
        parsed=parsed,
        plan=plan,
        plan_error=plan_error,
        generation_id=_generation_id(raw.text.get(ID_CHUNK), exif),
        foreign=foreign,
        foreign_error=foreign_error,
    )


@contextmanager
def _opened(source: str | os.PathLike[str] | BinaryIO, name: str) -> Iterator[BinaryIO]:
    """A path opened without blocking (a FIFO would) and only if it is a regular file; a stream as is."""
    if not isinstance(source, (str, os.PathLike)):
        yield source
        return
    fd = os.open(source, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise MetadataError(f"Cannot read {name}: it is not a regular file (a folder, FIFO or device).")
    with os.fdopen(fd, "rb") as fp:
        yield fp


def _read_container(fp: BinaryIO, name: str) -> tuple[Container, object]:
    """The container's size, text chunks and EXIF bytes, plus a JPEG/GIF comment; no pixel decoded."""
    start = fp.tell()
    head = fp.read(12)
    fp.seek(start)
    if head.startswith(PNG_SIGNATURE):
        return read_png(fp, name), None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return read_webp(fp, name), None
    if head[:3] == b"\xff\xd8\xff":
        image: Image.Image = JpegImagePlugin.JpegImageFile(fp)  # no bomb check: nothing is decoded
        _check_jpeg_end(fp)
    else:
        image = Image.open(fp)
    with image:
        exif = image.info.get("exif")
        raw = Container(
            image.format or "unknown", *image.size, exif=exif if isinstance(exif, bytes) else None
        )
        return raw, image.info.get("comment")


def _check_jpeg_end(fp: BinaryIO) -> None:
    """A JPEG must end with its EOI marker (trailers after it are allowed, within the last 64 KiB)."""
    end = fp.seek(0, os.SEEK_END)
    fp.seek(max(0, end - 65536))
    if b"\xff\xd9" not in fp.read():
        raise Truncated("no end-of-image marker")


def _exif(data: bytes | None) -> Image.Exif | None:
    if not data:
        return None
    exif = Image.Exif()
    exif.load(data)
    return exif


def _from_png_text(chunks: dict[str, str]) -> tuple[str | None, str | None]:
    infotext = chunks.get(INFOTEXT_CHUNK)
    plan = chunks.get(PLAN_CHUNK)
    return (str(infotext) if infotext is not None else None, str(plan) if plan is not None else None)


def _from_exif(exif: Image.Exif | None) -> tuple[str | None, str | None]:
    if not exif:
        return None, None
    ifd = exif.get_ifd(_EXIF_IFD)
    comment = ifd.get(_USER_COMMENT)
    infotext = None
    if isinstance(comment, bytes):
        infotext = decode_user_comment(comment)
    elif isinstance(comment, str):
        infotext = comment.strip("\0") or None
    note = ifd.get(_MAKER_NOTE)
    plan = None
    if isinstance(note, bytes) and note.startswith(PLAN_PREFIX):
        plan = note[len(PLAN_PREFIX) :].decode("utf-8", errors="replace")
    return infotext, plan


def _generation_id(chunk: object, exif: Image.Exif | None) -> str | None:
    """The generation id from the PNG chunk, else EXIF ImageUniqueID; None unless 32 hex digits."""
    value = chunk
    if value is None and exif:
        value = exif.get_ifd(_EXIF_IFD).get(_IMAGE_UNIQUE_ID)
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    text = value.strip("\0 ").lower() if isinstance(value, str) else ""
    return text if _ID_RE.fullmatch(text) else None


def _comment_text(comment: object) -> str | None:
    if isinstance(comment, bytes):
        comment = comment.decode("utf-8", errors="replace")
    return comment if isinstance(comment, str) and comment else None


def _parse_plan(text: str | None, name: str) -> tuple[GenerationPlan | None, str | None]:
    if text is None:
        return None, None
    try:
        return GenerationPlan.from_json(text), None
    except (PlanError, ValueError, TypeError) as exc:
        logger.warning("Plan stored in %s cannot be read: %s", name, exc)
        return None, str(exc)
