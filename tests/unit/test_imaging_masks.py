"""Inpainting masks: blur, "only masked" crop boxes, and compositing that keeps unmasked pixels exact."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ml_lib.diffusion.errors import InputImageError, RequestError
from ml_lib.diffusion.imaging.masks import (
    Box,
    blur_mask,
    composite,
    crop_region,
    crop_to_box,
    expand_to_aspect,
    paste_crop,
)


def noise(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def rect_mask(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    mask = Image.new("L", size)
    ImageDraw.Draw(mask).rectangle(box, fill=255)  # inclusive corners
    return mask


# --- blur ------------------------------------------------------------------------------------------


def test_blur_zero_is_a_copy_and_blur_softens_symmetrically() -> None:
    mask = Image.new("L", (41, 41))
    mask.putpixel((20, 20), 255)
    assert np.array_equal(np.asarray(blur_mask(mask, 0)), np.asarray(mask))
    out = np.asarray(blur_mask(mask, 2)).astype(int)
    assert out[20, 20] == out.max() < 255
    assert np.array_equal(out, out[::-1, :]) and np.array_equal(out, out[:, ::-1])
    assert np.array_equal(out, out.T)
    assert out[20, 20 + 6] == 0  # support: int(2.5 * 2 + 0.5) = 5 pixels each side
    assert abs(out.sum() - 255) <= 25  # the kernel is normalised (rounding aside)


def test_blur_keeps_white_white_and_makes_a_ramp_across_an_edge() -> None:
    white = Image.new("L", (16, 16), 255)
    assert np.asarray(blur_mask(white, 4)).min() == 255
    half = rect_mask((32, 8), (16, 0, 31, 7))
    row = np.asarray(blur_mask(half, 3, 0))[4].astype(int)
    assert (np.diff(row) >= 0).all() and row[0] == 0 and row[-1] == 255
    assert 100 < row[15] < 128 < row[16] < 155
    column = np.asarray(blur_mask(half, 3, 0))[:, 10]
    assert (column == column[0]).all()  # no blur along y


def test_negative_blur_is_refused() -> None:
    with pytest.raises(RequestError):
        blur_mask(Image.new("L", (4, 4)), -1)


# --- crop region and aspect ------------------------------------------------------------------------


def test_crop_region_is_the_painted_bbox_plus_padding_clipped() -> None:
    mask = rect_mask((100, 80), (10, 20, 29, 39))
    assert crop_region(mask) == Box(10, 20, 30, 40)
    assert crop_region(mask, 8) == Box(2, 12, 38, 48)
    assert crop_region(mask, 50) == Box(0, 0, 80, 80)


def test_crop_region_of_an_all_black_mask_is_an_error() -> None:
    with pytest.raises(InputImageError, match="nothing to repaint"):
        crop_region(Image.new("L", (10, 10)))


@pytest.mark.parametrize("seed", range(25))
def test_expanded_box_has_the_target_aspect_inside_the_image(seed: int) -> None:
    rng = np.random.default_rng(seed)
    image_size = (int(rng.integers(300, 700)), int(rng.integers(300, 700)))
    width, height = (int(v) * 8 for v in rng.integers(32, 129, 2))
    x1, y1 = int(rng.integers(0, image_size[0] - 60)), int(rng.integers(0, image_size[1] - 60))
    box = Box(x1, y1, x1 + int(rng.integers(4, 60)), y1 + int(rng.integers(4, 60)))
    out = expand_to_aspect(box, width, height, image_size)
    assert 0 <= out.left <= box.left and 0 <= out.top <= box.top
    assert box.right <= out.right <= image_size[0] and box.bottom <= out.bottom <= image_size[1]
    assert out.width == box.width or out.height == box.height  # only the short side grows
    # aspect to within one pixel of integer rounding
    assert abs(out.width * height - out.height * width) <= max(width, height)


def test_expansion_against_the_image_border_shifts_inside() -> None:
    out = expand_to_aspect(Box(0, 90, 40, 100), 512, 512, (200, 100))
    assert out == Box(0, 60, 40, 100)
    out = expand_to_aspect(Box(180, 0, 200, 80), 512, 512, (200, 100))
    assert out == Box(120, 0, 200, 80)


def test_an_image_too_small_for_the_aspect_gives_the_whole_side() -> None:
    out = expand_to_aspect(Box(10, 10, 190, 20), 512, 512, (200, 100))
    assert (out.top, out.bottom) == (0, 100) and (out.left, out.right) == (10, 190)


def test_box_validation() -> None:
    with pytest.raises(RequestError):
        Box(5, 5, 5, 10)
    with pytest.raises(RequestError, match="does not fit"):
        expand_to_aspect(Box(0, 0, 300, 10), 64, 64, (200, 100))


# --- compositing -----------------------------------------------------------------------------------


def test_composite_keeps_unmasked_pixels_bit_identical() -> None:
    original, generated = noise(64, 48, 1), noise(64, 48, 2)
    mask = Image.new("L", (64, 48))
    ImageDraw.Draw(mask).ellipse((10, 8, 40, 30), fill=255)
    mask = blur_mask(mask, 3)
    out = np.asarray(composite(original, generated, mask))
    m = np.asarray(mask)
    assert np.array_equal(out[m == 0], np.asarray(original)[m == 0])
    assert np.array_equal(out[m == 255], np.asarray(generated)[m == 255])
    grey = (m > 0) & (m < 255)
    lo = np.minimum(np.asarray(original), np.asarray(generated))[grey]
    hi = np.maximum(np.asarray(original), np.asarray(generated))[grey]
    assert ((out[grey] >= lo) & (out[grey] <= hi)).all()


def test_composite_half_grey_is_the_mean() -> None:
    out = composite(
        Image.new("RGB", (1, 1), (0, 0, 0)),
        Image.new("RGB", (1, 1), (200, 100, 2)),
        Image.new("L", (1, 1), 128),
    )
    assert out.getpixel((0, 0)) == (100, 50, 1)


def test_composite_needs_same_sizes_and_a_painted_mask() -> None:
    a, b = noise(8, 8, 1), noise(8, 8, 2)
    with pytest.raises(InputImageError, match="same size"):
        composite(a, noise(8, 9, 3), Image.new("L", (8, 8), 255))
    with pytest.raises(InputImageError, match="nothing to repaint"):
        composite(a, b, Image.new("L", (8, 8)))


def test_only_masked_round_trip() -> None:
    original = noise(128, 96, 4)
    mask = rect_mask((128, 96), (60, 40, 79, 49))
    box = expand_to_aspect(crop_region(mask, 4), 64, 64, original.size)
    crop = crop_to_box(original, box, 64, 64)
    assert crop.size == (64, 64)
    generated = Image.new("RGB", (64, 64), (255, 0, 255))
    out = np.asarray(paste_crop(original, generated, box, mask))
    m = np.asarray(mask)
    assert (out[m == 255] == (255, 0, 255)).all()
    assert np.array_equal(out[m == 0], np.asarray(original)[m == 0])


def test_paste_crop_box_must_fit() -> None:
    with pytest.raises(RequestError, match="does not fit"):
        paste_crop(noise(8, 8, 1), noise(4, 4, 2), Box(6, 6, 10, 10), Image.new("L", (8, 8), 255))
