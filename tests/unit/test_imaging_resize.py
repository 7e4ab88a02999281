"""A1111 resize modes: exact sizes, where the content lands, and the edge-stretch fill."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ml_lib.diffusion.errors import RequestError
from ml_lib.diffusion.imaging.resize import ResizeMode, resize_image

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def bands(width: int, height: int, horizontal: bool = True) -> Image.Image:
    """Red | green | blue: outer quarters red and blue, the middle half green (along the long axis)."""
    image = Image.new("RGB", (width, height), GREEN)
    if horizontal:
        image.paste(RED, (0, 0, width // 4, height))
        image.paste(BLUE, (width - width // 4, 0, width, height))
    else:
        image.paste(RED, (0, 0, width, height // 4))
        image.paste(BLUE, (0, height - height // 4, width, height))
    return image


@pytest.mark.parametrize("mode", list(ResizeMode))
@pytest.mark.parametrize(("width", "height"), [(64, 64), (96, 40), (40, 97), (1, 1)])
def test_every_mode_gives_the_exact_size(mode: ResizeMode, width: int, height: int) -> None:
    out = resize_image(bands(200, 100), width, height, mode)
    assert out.size == (width, height)
    assert out.mode == "RGB"


def test_just_resize_stretches_everything_in() -> None:
    out = np.asarray(resize_image(bands(200, 100), 100, 100, "just_resize"))
    assert tuple(out[50, 5]) == RED and tuple(out[50, 94]) == BLUE and tuple(out[50, 50]) == GREEN


def test_crop_and_resize_of_a_wide_image_keeps_the_centre() -> None:
    # Same height: no resampling, the middle 100 columns are cut out exactly.
    exact = np.asarray(resize_image(bands(200, 100), 100, 100, ResizeMode.CROP_AND_RESIZE))
    assert np.array_equal(exact, np.asarray(bands(200, 100))[:, 50:150])
    # Scaled: 200x100 → 50x50 shows the green middle (edges aside, where LANCZOS rings).
    out = np.asarray(resize_image(bands(200, 100), 50, 50, 1)).astype(int)
    assert np.abs(out[:, 3:47] - np.array(GREEN)).max() <= 2


def test_crop_and_resize_of_a_tall_image_keeps_the_middle_rows() -> None:
    out = np.asarray(resize_image(bands(100, 200, horizontal=False), 100, 100, "Crop and resize"))
    assert np.array_equal(out, np.asarray(bands(100, 200, horizontal=False))[50:150])


def test_resize_and_fill_centres_and_stretches_the_edge_rows() -> None:
    out = np.asarray(resize_image(bands(200, 100), 100, 100, ResizeMode.RESIZE_AND_FILL))
    # the image becomes 100x50 at rows 25..74; the bands repeat its first and last rows exactly
    assert np.array_equal(out[:25], np.broadcast_to(out[25], (25, 100, 3)))
    assert np.array_equal(out[75:], np.broadcast_to(out[74], (25, 100, 3)))
    assert tuple(out[0, 2]) == RED and tuple(out[99, 97]) == BLUE and tuple(out[0, 50]) == GREEN


def test_resize_and_fill_leaves_no_black_line_when_the_leftover_is_odd() -> None:
    out = np.asarray(resize_image(Image.new("RGB", (200, 100), (200, 100, 50)), 100, 99, 2))
    assert (out.reshape(-1, 3) == (200, 100, 50)).all()


def test_resize_and_fill_of_a_tall_image_stretches_the_edge_columns() -> None:
    out = np.asarray(resize_image(bands(50, 100, horizontal=False), 100, 50, "resize_and_fill"))
    # 50x100 → 25x50 at columns 38..62 (A1111: 100 // 2 - 25 // 2)
    assert np.array_equal(out[:, :38], np.broadcast_to(out[:, 38:39], (50, 38, 3)))
    assert np.array_equal(out[:, 63:], np.broadcast_to(out[:, 62:63], (50, 37, 3)))
    assert tuple(out[0, 0]) == RED and tuple(out[49, 99]) == BLUE


def test_masks_keep_their_mode() -> None:
    mask = Image.new("L", (80, 40), 255)
    for mode in ResizeMode:
        out = resize_image(mask, 32, 32, mode)
        assert out.mode == "L"
        assert np.asarray(out).min() == 255  # white everywhere: fill bands stretch white, no black


def test_same_size_is_unchanged() -> None:
    image = bands(64, 32)
    for mode in ResizeMode:
        assert np.array_equal(np.asarray(resize_image(image, 64, 32, mode)), np.asarray(image))


def test_mode_names_indices_and_labels() -> None:
    assert ResizeMode.parse(1) is ResizeMode.CROP_AND_RESIZE
    assert ResizeMode.parse("Resize and fill") is ResizeMode.RESIZE_AND_FILL
    assert ResizeMode.parse("just-resize") is ResizeMode.JUST_RESIZE
    assert [m.a1111_index for m in ResizeMode] == [0, 1, 2]
    assert ResizeMode.CROP_AND_RESIZE.label == "Crop and resize"
    for bad in ("stretch", 3, True):
        with pytest.raises(RequestError, match="resize mode"):
            ResizeMode.parse(bad)  # type: ignore[arg-type]


def test_bad_size_is_refused() -> None:
    with pytest.raises(RequestError, match="positive"):
        resize_image(bands(10, 10), 0, 10)
