"""img2img step counts as A1111 runs them, and the strength that makes diffusers run the same."""

from __future__ import annotations

import pytest

from ml_lib.diffusion.output.comfyui_steps import ksampler_run
from ml_lib.diffusion.plan import ImageRef, InitImage

REF = ImageRef("/inputs/abcdef.png", "ab" * 32, 64, 48)


@pytest.mark.parametrize("steps", [1, 3, 4, 5, 8, 20, 25, 30, 50, 150])
@pytest.mark.parametrize("strength", [0.0, 0.03, 0.1, 0.3, 0.5, 0.55, 0.6, 0.75, 0.999, 1.0])
def test_diffusers_runs_a1111s_count(steps: int, strength: float) -> None:
    init = InitImage(REF, strength=strength)
    a1111 = min(steps, int(steps * min(strength, 0.999)) + 1)  # setup_img2img_steps: t_enc + 1 steps
    assert init.steps_run(steps) == a1111
    handed = init.pipeline_strength(steps)
    assert 0 < handed <= 1.0
    assert min(int(steps * handed), steps) == a1111  # diffusers' get_timesteps


def test_a1111_examples() -> None:
    assert InitImage(REF, strength=0.6).steps_run(20) == 13  # diffusers' bare strength runs 12
    assert InitImage(REF, strength=1.0).steps_run(20) == 20
    assert InitImage(REF, strength=0.0).steps_run(20) == 1


@pytest.mark.parametrize(("total", "run"), [(25, 14), (25, 7), (25, 17), (50, 28), (50, 34)])
def test_a_denoise_is_found_where_the_roundest_quotient_falls_short(total: int, run: int) -> None:
    # 14 / 0.56 is 24.999999999999996 in floats, so ComfyUI's int(steps / denoise) would run 24
    found = ksampler_run("euler", "normal", total, run)
    assert found.steps == run and int(run / found.denoise) == total
