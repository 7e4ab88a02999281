"""Image metadata: PNG text chunks, A1111-style EXIF UserComment, plan JSON, clear errors."""

from __future__ import annotations

import io
import logging
import struct
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin, TiffImagePlugin

from ml_lib.diffusion.errors import MetadataError, OutputError, RequestError
from ml_lib.diffusion.output.infotext import format_infotext
from ml_lib.diffusion.output.metadata import (
    PLAN_CHUNK,
    PLAN_PREFIX,
    decode_user_comment,
    encode_user_comment,
    image_save_kwargs,
    normalize_format,
    read_metadata,
)
from ml_lib.diffusion.plan import Decision, GenerationPlan, ModelFormat, ModelRef, Source

EXIF_IFD, USER_COMMENT, MAKER_NOTE = 0x8769, 0x9286, 0x927C


def make_plan(**overrides: object) -> GenerationPlan:
    values: dict[str, object] = dict(
        prompt='a "fox", in: snow\nsecond line ünï 日本',
        negative_prompt="blurry, lowres",
        model=ModelRef("/m/x.safetensors", ModelFormat.SINGLE_FILE, "sd1", name="x", hash="0123456789"),
        width=64,
        height=48,
        steps=20,
        cfg_scale=7.5,
        sampler="DPM++ 2M",
        schedule="Karras",
        seed=42,
        batch_size=1,
        clip_skip=1,
        device="cpu",
        dtype="float32",
        output_dir="/out",
        name_template="[seed]",
        decisions=(Decision("steps", 20, Source.PROFILE, "SD1 default"),),
    )
    values.update(overrides)
    return GenerationPlan(**values)  # type: ignore[arg-type]


PLAN = make_plan()
INFOTEXT = format_infotext(PLAN, seed=PLAN.seed, model_hash="0123456789", version="v0.1.0")


def encoded(fmt: str, infotext: str = INFOTEXT, plan_json: str | None = PLAN.to_json()) -> bytes:
    buf = io.BytesIO()
    image_save_kwargs(fmt, infotext, plan_json).save(Image.new("RGB", (64, 48), (10, 200, 30)), buf)
    return buf.getvalue()


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return chunks


def exif_with(comment: bytes | None = None, note: bytes | None = None) -> bytes:
    exif = Image.Exif()
    ifd = exif.get_ifd(EXIF_IFD)
    if comment is not None:
        ifd[USER_COMMENT] = comment
    if note is not None:
        ifd[MAKER_NOTE] = note
    return exif.tobytes()


def jpeg_with_exif(exif: bytes) -> io.BytesIO:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="JPEG", exif=exif)
    buf.seek(0)
    return buf


# --- writing -------------------------------------------------------------------------------------


def test_normalize_format() -> None:
    assert normalize_format("PNG") == ("PNG", ".png")
    assert normalize_format(".jpg") == ("JPEG", ".jpg")
    assert normalize_format("jpeg") == ("JPEG", ".jpg")
    assert normalize_format("webp") == ("WEBP", ".webp")
    with pytest.raises(RequestError, match="png, jpeg"):
        normalize_format("gif")


def test_png_has_parameters_and_plan_chunks() -> None:
    chunks = png_chunks(encoded("png"))
    kinds = {body.split(b"\0", 1)[0]: kind for kind, body in chunks if kind in (b"tEXt", b"iTXt", b"zTXt")}
    assert kinds[b"parameters"] == b"iTXt"  # the infotext is not latin-1
    assert PLAN_CHUNK.encode() in kinds
    with Image.open(io.BytesIO(encoded("png"))) as image:
        assert image.text["parameters"] == INFOTEXT
        assert GenerationPlan.from_json(image.text[PLAN_CHUNK]) == PLAN


def test_latin1_infotext_uses_text_chunk_like_a1111() -> None:
    chunks = png_chunks(encoded("png", infotext="a cat\nSteps: 1, Seed: 2, Size: 8x8", plan_json=None))
    text = [body for kind, body in chunks if kind == b"tEXt"]
    assert text == [b"parameters\0a cat\nSteps: 1, Seed: 2, Size: 8x8"]
    assert not any(body.startswith(PLAN_CHUNK.encode()) for _, body in chunks)


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_exif_tags_are_undefined_and_read_back(fmt: str) -> None:
    options = image_save_kwargs(fmt, INFOTEXT, PLAN.to_json())
    assert options.exif is not None and options.text_chunks == ()
    with Image.open(io.BytesIO(encoded(fmt))) as image:
        raw = image.info["exif"]
        ifd = image.getexif().get_ifd(EXIF_IFD)
    tiff = raw.removeprefix(b"Exif\0\0")  # JPEG keeps the APP1 prefix, WebP does not
    head = TiffImagePlugin.ImageFileDirectory_v2(tiff[:8])
    head.load(_at(tiff, head.next))
    exif_ifd = TiffImagePlugin.ImageFileDirectory_v2(tiff[:8])
    exif_ifd.load(_at(tiff, head[EXIF_IFD]))
    assert exif_ifd.tagtype[USER_COMMENT] == 7  # UNDEFINED, as piexif/A1111 expect
    assert exif_ifd.tagtype[MAKER_NOTE] == 7
    assert ifd[USER_COMMENT] == b"UNICODE\0" + INFOTEXT.encode("utf-16-be")
    assert ifd[MAKER_NOTE] == PLAN_PREFIX + PLAN.to_json().encode("utf-8")


def _at(tiff: bytes, offset: int) -> io.BytesIO:
    fp = io.BytesIO(tiff)
    fp.seek(offset)
    return fp


def test_jpeg_drops_plan_that_does_not_fit_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    big = make_plan(prompt="word " * 14_000)
    with caplog.at_level(logging.WARNING):
        options = image_save_kwargs("jpg", "short infotext", big.to_json())
    assert options.exif is not None and PLAN_PREFIX not in options.exif
    assert "does not fit" in caplog.text
    webp = image_save_kwargs("webp", "short infotext", big.to_json())
    assert webp.exif is not None and PLAN_PREFIX in webp.exif


def test_jpeg_infotext_too_long_is_an_output_error() -> None:
    with pytest.raises(OutputError, match="PNG or WebP"):
        image_save_kwargs("jpg", "x" * 40_000, None)


def test_jpeg_of_rgba_image_is_saved_as_rgb() -> None:
    buf = io.BytesIO()
    image_save_kwargs("jpg", "a", None).save(Image.new("RGBA", (8, 8), (1, 2, 3, 100)), buf)
    buf.seek(0)
    assert read_metadata(buf).infotext == "a"


# --- reading -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_round_trip(fmt: str, tmp_path: Path) -> None:
    path = tmp_path / f"img.{fmt}"
    path.write_bytes(encoded(fmt))
    meta = read_metadata(path)
    assert meta.format == {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}[fmt]
    assert (meta.width, meta.height) == (64, 48)
    assert meta.infotext == INFOTEXT
    assert meta.parsed is not None
    assert meta.parsed.prompt == PLAN.prompt and meta.parsed.negative_prompt == PLAN.negative_prompt
    assert meta.parsed.seed == 42 and meta.parsed.cfg_scale == 7.5
    assert meta.plan == PLAN
    assert meta.plan_error is None


def test_reads_from_file_object_and_str_path(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(encoded("png"))
    with path.open("rb") as fh:
        assert read_metadata(fh).plan == PLAN
        assert not fh.closed
    assert read_metadata(str(path)).infotext == INFOTEXT


def test_a1111_png_without_plan() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 8x8")
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG", pnginfo=info)
    buf.seek(0)
    meta = read_metadata(buf)
    assert meta.plan is None and meta.plan_error is None
    assert meta.parsed is not None and meta.parsed.sampler == "Euler a" and meta.parsed.seed == 5


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_image_without_metadata_is_not_an_error(fmt: str) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format=fmt)
    buf.seek(0)
    meta = read_metadata(buf)
    assert (meta.format, meta.infotext, meta.parsed, meta.plan, meta.plan_error) == (
        fmt,
        None,
        None,
        None,
        None,
    )


def test_broken_plan_chunk_sets_plan_error() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", INFOTEXT)
    info.add_text(PLAN_CHUNK, '{"schema_version": 99}')
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG", pnginfo=info)
    buf.seek(0)
    meta = read_metadata(buf)
    assert meta.plan is None
    assert meta.plan_error is not None and "schema version 99" in meta.plan_error
    assert meta.infotext == INFOTEXT


def test_malformed_plan_json_in_exif() -> None:
    meta = read_metadata(jpeg_with_exif(exif_with(encode_user_comment("p"), PLAN_PREFIX + b"{not json")))
    assert meta.plan is None and meta.plan_error is not None and "malformed" in meta.plan_error


def test_camera_maker_note_is_ignored() -> None:
    meta = read_metadata(jpeg_with_exif(exif_with(encode_user_comment("p"), b"Nikon\0\x02\x10\0\0MM")))
    assert meta.infotext == "p" and meta.plan is None and meta.plan_error is None


TEXT = "héllo, wörld 日本\nSteps: 1, Seed: 2, Size: 3x4"


@pytest.mark.parametrize(
    "comment",
    [
        b"UNICODE\0" + TEXT.encode("utf-16-be"),
        b"UNICODE\0" + TEXT.encode("utf-16-le"),
        b"UNICODE\0\xff\xfe" + TEXT.encode("utf-16-le"),
        b"UNICODE\0\xfe\xff" + TEXT.encode("utf-16-be"),
        b"ASCII\0\0\0" + TEXT.encode("utf-8"),
        b"\0" * 8 + TEXT.encode("utf-8"),
        TEXT.encode("utf-8"),
    ],
    ids=["utf16be", "utf16le", "bom-le", "bom-be", "ascii", "undefined", "no-prefix"],
)
def test_user_comment_variants(comment: bytes) -> None:
    assert decode_user_comment(comment) == TEXT
    meta = read_metadata(jpeg_with_exif(exif_with(comment)))
    assert meta.infotext == TEXT
    assert meta.parsed is not None and meta.parsed.seed == 2


def test_ascii_user_comment_plain_ascii() -> None:
    assert decode_user_comment(b"ASCII\0\0\0Steps: 5\0\0") == "Steps: 5"
    assert decode_user_comment(b"UNICODE\0") is None


# --- errors --------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match="does not exist"):
        read_metadata(tmp_path / "nope.png")


def test_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("hello, not an image")
    with pytest.raises(MetadataError, match="not an image"):
        read_metadata(path)


def test_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match="Cannot read"):
        read_metadata(tmp_path)


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_truncated_image(fmt: str, tmp_path: Path) -> None:
    big = Image.merge("RGB", [Image.effect_noise((128, 128), 80)] * 3)
    buf = io.BytesIO()
    image_save_kwargs(fmt, INFOTEXT, PLAN.to_json()).save(big, buf)
    data = buf.getvalue()
    path = tmp_path / f"cut.{fmt}"
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(MetadataError, match="truncated"):
        read_metadata(path)
