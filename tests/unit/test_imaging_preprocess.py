"""ControlNet preprocessors: real edges on drawn shapes, the inpaint condition, registry and scales."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ml_lib.diffusion.errors import AnnotatorUnavailableError, InputImageError, RequestError
from ml_lib.diffusion.imaging.preprocess import (
    PREPROCESSORS,
    canny,
    control_types,
    inpaint,
    preprocess,
    recommended_scale,
    scribble,
    softedge,
    tile,
)

LO, HI = 20, 43  # the square covers pixels LO..HI inclusive


def square(background: int = 0, fill: int = 255, size: int = 64) -> Image.Image:
    image = Image.new("RGB", (size, size), (background,) * 3)
    ImageDraw.Draw(image).rectangle((LO, LO, HI, HI), fill=(fill,) * 3)
    return image


def white(image: Image.Image) -> np.ndarray:
    arr = np.asarray(image)
    assert image.mode == "RGB"
    assert (arr[:, :, 0] == arr[:, :, 1]).all() and (arr[:, :, 1] == arr[:, :, 2]).all()
    return arr[:, :, 0] > 0


# --- canny -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [0.0, 1.0])
def test_canny_finds_the_border_of_a_square_and_nothing_else(sigma: float) -> None:
    out = canny(square(), 100, 200, sigma=sigma)
    arr = np.asarray(out)
    assert out.size == (64, 64) and set(np.unique(arr).tolist()) == {0, 255}
    edges = white(out)
    ys, xs = np.nonzero(edges)

    # every edge pixel lies on the border, one pixel either side of the step at most
    def near(v: np.ndarray) -> np.ndarray:
        return np.isin(v, (LO - 1, LO, HI, HI + 1))

    on_border = (near(xs) & (ys >= LO - 1) & (ys <= HI + 1)) | (near(ys) & (xs >= LO - 1) & (xs <= HI + 1))
    assert on_border.all()
    assert not edges[LO + 2 : HI - 1, LO + 2 : HI - 1].any()  # flat interior
    # each side is found along its whole length (corners aside), as a thin line
    middle = slice(LO + 3, HI - 2)
    for side in (edges[middle, LO - 1 : LO + 1], edges[middle, HI : HI + 2]):
        assert (side.sum(axis=1) == 1).all()
    for side in (edges[LO - 1 : LO + 1, middle], edges[HI : HI + 2, middle]):
        assert (side.sum(axis=0) == 1).all()


def test_canny_is_deterministic_and_thresholds_matter() -> None:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8))
    assert np.array_equal(np.asarray(canny(image)), np.asarray(canny(image)))
    many, few = white(canny(image, 20, 40)).sum(), white(canny(image, 200, 400)).sum()
    assert many > few
    assert not white(canny(square(), 3000, 4000)).any()
    assert not white(canny(Image.new("RGB", (32, 32), (90, 90, 90)))).any()


def test_canny_sees_a_low_contrast_edge_only_with_low_thresholds() -> None:
    faint = square(background=100, fill=110)  # step of 10 grey levels: Sobel magnitude about 40
    assert not white(canny(faint, 100, 200, sigma=0)).any()
    assert white(canny(faint, 10, 20, sigma=0)).sum() > 60


def test_canny_parameter_checks() -> None:
    with pytest.raises(RequestError):
        canny(square(), 200, 100)
    with pytest.raises(RequestError):
        canny(square(), sigma=-1)


# --- scribble / softedge / tile --------------------------------------------------------------------


def test_scribble_draws_thick_binary_lines_around_a_dark_line() -> None:
    image = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(image).line((10, 32, 54, 32), fill="black", width=2)
    out = scribble(image)
    assert set(np.unique(np.asarray(out)).tolist()) == {0, 255}
    lines = white(out)
    assert lines[31:33, 16:48].all()  # the drawn line is covered
    assert not lines[:20].any() and not lines[45:].any()  # nothing far from it
    thin = scribble(image, thickness=1)
    assert white(thin).sum() < lines.sum()


def test_scribble_from_canny_is_a_thickened_canny() -> None:
    thick = white(scribble(square(), method="canny", thickness=3))
    edges = white(canny(square()))
    assert thick[edges].all() and thick.sum() > 2 * edges.sum()
    assert not thick[LO + 3 : HI - 2, LO + 3 : HI - 2].any()
    with pytest.raises(RequestError, match="scribble method"):
        scribble(square(), method="magic")


def test_softedge_is_a_normalised_gradient_map() -> None:
    arr = np.asarray(softedge(square()))[:, :, 0].astype(int)
    assert arr.max() == 255
    assert arr[32, LO] > 200 and arr[32, 32] == 0 and arr[5, 5] == 0
    assert 0 < arr[32, LO - 2] < arr[32, LO]  # soft: it falls off away from the edge
    assert np.asarray(softedge(Image.new("RGB", (8, 8), "gray"))).max() == 0


def test_tile_keeps_the_size_and_blurs_fine_detail_away() -> None:
    checker = Image.fromarray(((np.indices((64, 64)).sum(axis=0) % 2) * 255).astype(np.uint8)).convert("RGB")
    assert np.array_equal(np.asarray(tile(checker)), np.asarray(checker))
    out = np.asarray(tile(checker, down_sampling_rate=4.0)).astype(int)
    assert out.shape == (64, 64, 3)
    assert np.abs(out - 127.5).max() < 20  # 1-pixel checks average to grey
    with pytest.raises(RequestError):
        tile(checker, down_sampling_rate=0.5)


# --- inpaint condition -----------------------------------------------------------------------------


def test_inpaint_condition_marks_masked_pixels_minus_one() -> None:
    image = Image.new("RGB", (8, 4), (255, 51, 0))
    mask = Image.new("L", (8, 4))
    mask.paste(255, (4, 0, 8, 4))
    mask.putpixel((0, 0), 128)  # > 50 %: masked
    mask.putpixel((1, 0), 127)  # < 50 %: kept
    cond = inpaint(image, mask=mask)
    assert cond.dtype == np.float32 and cond.shape == (4, 8, 3)
    assert (cond[:, 4:] == -1).all() and (cond[0, 0] == -1).all()
    assert np.allclose(cond[1, 1], (1.0, 0.2, 0.0)) and np.allclose(cond[0, 1], (1.0, 0.2, 0.0))


def test_inpaint_condition_checks_its_mask() -> None:
    image = Image.new("RGB", (8, 4))
    with pytest.raises(InputImageError, match="8x4"):
        inpaint(image, mask=Image.new("L", (4, 4), 255))
    with pytest.raises(InputImageError, match="nothing to repaint"):
        inpaint(image, mask=Image.new("L", (8, 4)))
    as_array = np.zeros((4, 8), dtype=np.uint8)
    as_array[0, 0] = 255
    assert (preprocess("inpaint", image, mask=as_array)[0, 0] == -1).all()


# --- registry, annotators, scales ------------------------------------------------------------------


def test_preprocess_by_name_matches_the_function_and_accepts_any_source() -> None:
    image = square()
    assert np.array_equal(
        np.asarray(preprocess("canny", image, low=50, high=150)), np.asarray(canny(image, 50, 150))
    )
    from_array = preprocess("canny", np.asarray(image))
    assert np.array_equal(np.asarray(from_array), np.asarray(canny(image)))
    with pytest.raises(RequestError, match="Unknown preprocessor"):
        preprocess("sharpen", image)
    with pytest.raises(RequestError, match="accepts: low, high, sigma"):
        preprocess("canny", image, threshold=3)


def test_model_based_preprocessors_run_on_the_engine_side(tmp_path: Path) -> None:
    for name in ("depth", "openpose", "lineart", "lineart_anime", "normal", "mlsd", "hed", "pidinet"):
        assert PREPROCESSORS[name].needs_weights
        with pytest.raises(AnnotatorUnavailableError, match="ML_DIFFUSION_ANNOTATORS"):
            preprocess(name, square())
    with pytest.raises(AnnotatorUnavailableError, match=r"sk_model\.pth"):
        preprocess("lineart", square(), annotator_dir=tmp_path)


def test_recommended_scales() -> None:
    expected = {
        "canny": 1.0,
        "depth": 1.0,
        "openpose": 1.0,
        "tile": 0.6,
        "inpaint": 1.0,
        "scribble": 0.9,
        "softedge": 0.9,
    }
    for kind, scale in expected.items():
        assert recommended_scale(kind) == scale
    assert set(expected) <= set(control_types())
    assert all(0 < recommended_scale(kind) <= 2 for kind in control_types())
    assert {p.control_type for p in PREPROCESSORS.values()} <= set(control_types())
    with pytest.raises(RequestError, match="Unknown control type"):
        recommended_scale("telepathy")
