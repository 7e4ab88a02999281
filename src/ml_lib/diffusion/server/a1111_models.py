"""AUTOMATIC1111 1.10 request bodies (``modules/api/models.py``): the fields we honour; others are ignored."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Img2ImgBody", "OptionsBody", "PngInfoBody", "Txt2ImgBody"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Txt2ImgBody(_Body):
    """``StableDiffusionTxt2ImgProcessingAPI``. Omitted values are planned automatically."""

    prompt: str = ""
    negative_prompt: str = ""
    seed: int = -1
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    cfg_scale: float | None = None
    sampler_name: str | None = None
    sampler_index: str | None = None  # the pre-1.6 field name
    scheduler: str | None = None
    batch_size: int = 1
    n_iter: int = 1
    send_images: bool = True
    save_images: bool = False
    # hires fix (txt2img), variation seeds and the SDXL refiner, as A1111 1.10 names them
    enable_hr: bool = False
    hr_scale: float = 2.0
    hr_upscaler: str | None = None
    hr_second_pass_steps: int = 0
    hr_resize_x: int = 0
    hr_resize_y: int = 0
    hr_sampler_name: str | None = None
    hr_checkpoint_name: str | None = None
    hr_prompt: str = ""
    hr_negative_prompt: str = ""
    denoising_strength: float | None = None
    subseed: int = -1
    subseed_strength: float = 0.0
    seed_resize_from_h: int = -1
    seed_resize_from_w: int = -1
    refiner_checkpoint: str | None = None
    refiner_switch_at: float | None = None
    override_settings: dict[str, Any] = Field(default_factory=dict)
    alwayson_scripts: dict[str, Any] = Field(default_factory=dict)


class Img2ImgBody(Txt2ImgBody):
    """``StableDiffusionImg2ImgProcessingAPI``: init images, mask and inpainting options."""

    init_images: list[str] = Field(default_factory=list)
    mask: str | None = None
    denoising_strength: float | None = 0.75
    resize_mode: int = 0
    mask_blur: int | None = None
    inpainting_fill: int = 0  # A1111 1.10's API defaults: fill, only masked, no padding
    inpaint_full_res: bool = True
    inpaint_full_res_padding: int | None = 0
    inpainting_mask_invert: int = 0


class PngInfoBody(_Body):
    """``PNGInfoRequest``."""

    image: str


class OptionsBody(_Body):
    """The subset of ``/sdapi/v1/options`` we honour."""

    sd_model_checkpoint: str | None = None
