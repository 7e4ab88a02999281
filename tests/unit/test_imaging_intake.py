"""Input intake: size limits, damaged files, odd modes and arrays to exact RGB, masks and their rules."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from ml_lib.diffusion.errors import ConfigError, InputImageError, RequestError
from ml_lib.diffusion.imaging.intake import DEFAULT_MAX_PIXELS, load_image, load_mask


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` pixels (the data is a few bytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def encoded(image: Image.Image, fmt: str = "PNG", **kwargs: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def noise(width: int = 64, height: int = 48, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def px(image: Image.Image, xy: tuple[int, int] = (0, 0)) -> tuple[int, ...]:
    assert image.mode == "RGB"
    return image.getpixel(xy)


# --- size limits -----------------------------------------------------------------------------------


def test_default_limit_is_pillows() -> None:
    assert DEFAULT_MAX_PIXELS == 89_478_485


def test_decompression_bomb_far_over_pillows_limit_is_refused() -> None:
    data = bomb_png(100_000, 100_000)
    assert len(data) < 200
    with pytest.raises(InputImageError, match="decompression-bomb"):
        load_image(data)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_bomb_between_one_and_two_times_the_limit_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png(10_000, 10_000))  # 1e8 pixels: Pillow only warns
    with pytest.raises(InputImageError, match="89,478,485"):
        load_image(path, max_pixels=DEFAULT_MAX_PIXELS)
    with pytest.raises(InputImageError, match="16,777,216"):  # the default: Limits().max_pixels
        load_image(path)


def test_lower_limit_applies_to_every_kind_of_source(tmp_path: Path) -> None:
    image = noise(50, 40)
    path = tmp_path / "x.png"
    image.save(path)
    sources = [path, str(path), encoded(image), image, np.asarray(image)]
    for src in sources:
        with pytest.raises(InputImageError, match="2,000 pixels"):
            load_image(src, max_pixels=1999)
        assert load_image(src, max_pixels=2000).size == (50, 40)


def test_empty_array_is_refused() -> None:
    with pytest.raises(InputImageError, match="empty"):
        load_image(np.zeros((0, 5, 3), dtype=np.uint8))


# --- damaged and missing files -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file_raises_instead_of_giving_a_partial_image(tmp_path: Path, fmt: str) -> None:
    data = encoded(noise(128, 128), fmt)
    cut = data[: len(data) // 2]
    with pytest.raises(InputImageError, match="truncated or corrupt"):
        load_image(cut)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(cut)
    with pytest.raises(InputImageError, match="truncated or corrupt"):
        load_image(path)


def test_truncated_lazy_pil_image_raises() -> None:
    lazy = Image.open(io.BytesIO(encoded(noise(128, 128))[:300]))
    with pytest.raises(InputImageError, match="truncated or corrupt"):
        load_image(lazy)


def test_corrupt_png_data_raises() -> None:
    data = bytearray(encoded(noise()))
    start = data.index(b"IDAT") + 20
    data[start : start + 40] = b"\xff" * 40
    with pytest.raises(InputImageError):
        load_image(bytes(data))


def test_not_an_image_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(InputImageError, match="not an image"):
        load_image(b"hello, I am text")
    with pytest.raises(InputImageError, match="does not exist"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(InputImageError, match="folder"):
        load_image(tmp_path)
    with pytest.raises(InputImageError, match="int"):
        load_image(42)  # type: ignore[arg-type]


def test_input_image_error_is_a_request_error() -> None:
    assert issubclass(InputImageError, RequestError)


def test_refuses_to_work_when_truncated_loading_was_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(ConfigError, match="LOAD_TRUNCATED_IMAGES"):
        load_image(encoded(noise()))


# --- modes to RGB ------------------------------------------------------------------------------------


def test_rgb_round_trips_exactly_and_is_an_independent_loaded_copy(tmp_path: Path) -> None:
    image = noise()
    path = tmp_path / "n.png"
    image.save(path)
    for src in (path, encoded(image), image, np.asarray(image)):
        out = load_image(src)
        assert out.mode == "RGB"
        assert np.array_equal(np.asarray(out), np.asarray(image))
    out = load_image(image)
    assert out is not image
    before = image.getpixel((0, 0))
    out.putpixel((0, 0), tuple(255 - v for v in before))
    assert image.getpixel((0, 0)) == before


def test_rgba_is_composited_on_white_by_alpha() -> None:
    image = Image.new("RGBA", (3, 1))
    image.putdata([(255, 0, 0, 255), (255, 0, 0, 0), (0, 0, 0, 128)])
    out = load_image(encoded(image))
    assert [px(out, (x, 0)) for x in range(3)] == [(255, 0, 0), (255, 255, 255), (127, 127, 127)]
    grey_bg = load_image(image, background=(0, 0, 0))
    assert px(grey_bg, (1, 0)) == (0, 0, 0)


def test_palette_with_transparent_index_and_la() -> None:
    pal = Image.new("P", (2, 1))
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.putdata([0, 1])
    pal.info["transparency"] = 0
    out = load_image(encoded(pal))
    assert [px(out, (0, 0)), px(out, (1, 0))] == [(255, 255, 255), (255, 0, 0)]

    la = Image.new("LA", (2, 1))
    la.putdata([(100, 255), (100, 0)])
    out = load_image(la)
    assert [px(out, (0, 0)), px(out, (1, 0))] == [(100, 100, 100), (255, 255, 255)]


def test_wide_greyscale_modes_are_scaled_to_8_bit() -> None:
    values16 = np.array([[0, 65535, 128 * 257, 257]], dtype=np.uint16)
    out = load_image(encoded(Image.fromarray(values16)))  # a 16-bit PNG
    assert [px(out, (x, 0)) for x in range(4)] == [(0,) * 3, (255,) * 3, (128,) * 3, (1,) * 3]

    as_i = Image.fromarray(values16.astype(np.int32))
    assert as_i.mode == "I"
    assert px(load_image(as_i), (1, 0)) == (255, 255, 255)
    with pytest.raises(InputImageError, match=r"0\.\.65535"):
        load_image(Image.fromarray(np.array([[-5, 70000]], dtype=np.int32)))

    floats = Image.fromarray(np.array([[0.0, 1.0, 0.25]], dtype=np.float32))
    assert floats.mode == "F"
    assert [px(load_image(floats), (x, 0)) for x in range(3)] == [(0,) * 3, (255,) * 3, (64,) * 3]
    with pytest.raises(InputImageError, match=r"0\.\.1"):
        load_image(Image.fromarray(np.array([[0.0, 200.0]], dtype=np.float32)))


def test_cmyk_bilevel_and_grey() -> None:
    cmyk = Image.new("CMYK", (3, 1))
    cmyk.putdata([(0, 0, 0, 0), (255, 0, 0, 0), (0, 0, 0, 255)])
    out = load_image(encoded(cmyk, "TIFF"))
    assert [px(out, (x, 0)) for x in range(3)] == [(255, 255, 255), (0, 255, 255), (0, 0, 0)]

    bilevel = Image.new("1", (2, 1))
    bilevel.putpixel((1, 0), 1)
    out = load_image(encoded(bilevel))
    assert [px(out, (0, 0)), px(out, (1, 0))] == [(0, 0, 0), (255, 255, 255)]

    assert px(load_image(Image.new("L", (1, 1), 77))) == (77, 77, 77)


def test_numpy_shapes_and_dtypes() -> None:
    grey = np.array([[0, 10], [200, 255]], dtype=np.uint8)
    assert px(load_image(grey), (0, 1)) == (200, 200, 200)
    assert px(load_image(grey[:, :, None]), (1, 0)) == (10, 10, 10)
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[0, 1] = (1, 2, 3)
    assert px(load_image(rgb), (1, 0)) == (1, 2, 3)
    rgba = np.zeros((1, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)
    out = load_image(rgba)
    assert [px(out, (0, 0)), px(out, (1, 0))] == [(10, 20, 30), (255, 255, 255)]
    unit = np.array([[[0.0, 0.5, 1.0]]], dtype=np.float64)
    assert px(load_image(unit)) == (0, 128, 255)
    assert px(load_image(unit.astype(np.float32))) == (0, 128, 255)
    assert px(load_image(np.array([[True, False]])), (0, 0)) == (255, 255, 255)
    assert px(load_image(np.array([[65535]], dtype=np.uint16))) == (255, 255, 255)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((3, 8, 8), dtype=np.uint8), "HxW"),
        (np.zeros((2, 2, 2), dtype=np.uint8), "HxW"),
        (np.zeros((2, 2), dtype=np.int64), "dtype"),
        (np.full((2, 2), 255.0), r"0\.\.1"),
        (np.full((2, 2), np.nan), "NaN"),
    ],
)
def test_bad_arrays_are_refused(array: np.ndarray, message: str) -> None:
    with pytest.raises(InputImageError, match=message):
        load_image(array)


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (4, 2), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 2, 2))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    out = load_image(encoded(image, exif=exif))
    assert out.size == (2, 4)
    assert px(out, (0, 0)) == (255, 0, 0) and px(out, (1, 3)) == (0, 0, 255)


def test_animated_image_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    assert px(load_image(buf.getvalue())) == (255, 0, 0)


# --- masks ---------------------------------------------------------------------------------------------


def test_mask_is_grey_levels_of_the_image() -> None:
    rgb = Image.new("RGB", (4, 4))
    rgb.putpixel((1, 1), (255, 255, 255))
    rgb.putpixel((2, 2), (128, 128, 128))
    mask = load_mask(encoded(rgb), (4, 4))
    assert mask.mode == "L"
    assert (mask.getpixel((1, 1)), mask.getpixel((2, 2)), mask.getpixel((0, 0))) == (255, 128, 0)


def test_alpha_only_mask_uses_alpha_opaque_means_repaint() -> None:
    arr = np.zeros((4, 4, 4), dtype=np.uint8)  # colour all black, content only in alpha
    arr[1:3, 1:3, 3] = 255
    arr[0, 0, 3] = 100
    mask = load_mask(Image.fromarray(arr), (4, 4))
    expected = arr[:, :, 3]
    assert np.array_equal(np.asarray(mask), expected)


def test_rgba_strokes_on_transparent_layer() -> None:
    arr = np.zeros((4, 4, 4), dtype=np.uint8)
    arr[1, :, :] = 255  # an opaque white stroke; the rest transparent black
    arr[2, :, :3] = 255  # white but fully transparent: kept
    mask = np.asarray(load_mask(arr, (4, 4)))
    assert mask[1].tolist() == [255] * 4
    assert mask[2].tolist() == [0] * 4


def test_mask_of_other_size_is_stretched_nearest_or_refused() -> None:
    small = Image.new("L", (4, 2))
    small.putpixel((0, 0), 255)
    mask = load_mask(small, (8, 4))
    assert mask.size == (8, 4)
    assert set(np.unique(np.asarray(mask)).tolist()) == {0, 255}  # nearest: no new grey levels
    assert np.asarray(mask)[:2, :2].tolist() == [[255, 255], [255, 255]]
    with pytest.raises(InputImageError, match=r"4x2.*8x4"):
        load_mask(small, (8, 4), resize=False)


def test_all_black_mask_is_refused() -> None:
    with pytest.raises(InputImageError, match="nothing to repaint"):
        load_mask(Image.new("L", (4, 4)), (4, 4))


def test_bilevel_and_16_bit_masks() -> None:
    bilevel = Image.new("1", (2, 2))
    bilevel.putpixel((1, 1), 1)
    assert np.asarray(load_mask(bilevel, (2, 2))).tolist() == [[0, 0], [0, 255]]
    wide = Image.fromarray(np.array([[0, 65535]], dtype=np.uint16))
    assert np.asarray(load_mask(wide, (2, 1))).tolist() == [[0, 255]]
