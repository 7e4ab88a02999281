"""A1111 API bodies' hires fix, variation seed, refiner and n_iter fields → request fields."""

from __future__ import annotations

from ml_lib.diffusion.server.a1111_models import Img2ImgBody, Txt2ImgBody
from ml_lib.diffusion.server.a1111_passes import pass_fields


def test_a_plain_body_asks_for_nothing_more() -> None:
    assert pass_fields(Txt2ImgBody(prompt="a fox")) == {}


def test_hires_fix_fields_as_an_a1111_client_sends_them() -> None:
    body = Txt2ImgBody(
        prompt="a fox", enable_hr=True, hr_scale=1.5, hr_upscaler="Latent (bicubic)", hr_second_pass_steps=12,
        denoising_strength=0.4, hr_sampler_name="Use same sampler", hr_prompt="sharp",
    )  # fmt: skip
    assert pass_fields(body) == {
        "hires": True,
        "hires_scale": 1.5,
        "hires_steps": 12,
        "hires_upscaler": "Latent (bicubic)",
        "hires_denoise": 0.4,
        "hires_prompt": "sharp",
    }
    resized = pass_fields(Txt2ImgBody(enable_hr=True, hr_resize_x=1024, hr_resize_y=0))
    assert resized["hires_resize"] == (1024, 0)
    assert "hires" not in pass_fields(Img2ImgBody(enable_hr=True))  # A1111's img2img has no hires fix


def test_variation_seed_refiner_and_n_iter() -> None:
    body = Txt2ImgBody(
        subseed=-1, subseed_strength=0.3, seed_resize_from_w=512, seed_resize_from_h=768, n_iter=3,
        refiner_checkpoint="sd_xl_refiner_1.0 [7440042bbd]", refiner_switch_at=0.75,
    )  # fmt: skip
    assert pass_fields(body) == {
        "batch_count": 3,
        "variation_strength": 0.3,
        "variation_seed": None,  # -1: drawn by the planner, as A1111 draws it
        "seed_resize_from": (512, 768),
        "refiner": "sd_xl_refiner_1.0",
        "refiner_switch": 0.75,
    }
    assert "variation_seed" not in pass_fields(Txt2ImgBody(subseed=5))  # no strength: nothing changes


def test_hr_checkpoint_name_by_title_or_name_and_use_same_checkpoint() -> None:
    body = Txt2ImgBody(enable_hr=True, hr_checkpoint_name="detail_v2.safetensors [abcdef0123]")
    assert pass_fields(body)["hires_checkpoint"] == "detail_v2.safetensors"  # the title's " [hash]" dropped
    assert (
        pass_fields(Txt2ImgBody(enable_hr=True, hr_checkpoint_name="detail_v2"))["hires_checkpoint"]
        == "detail_v2"
    )
    assert "hires_checkpoint" not in pass_fields(
        Txt2ImgBody(enable_hr=True, hr_checkpoint_name="Use same checkpoint")
    )
    assert "hires_checkpoint" not in pass_fields(Txt2ImgBody(hr_checkpoint_name="detail_v2"))  # no hires fix
