"""Architectures of the demo model (torch, diffusers, transformers): sizes from FACTS, attention at 16x16.

64x64 RGB → VAE (16, 32, 64), one layer per block, no mid attention → 16x16x4 latents; UNet (64, 128, 128)
with cross-attention at every resolution (16x16, 8x8, 4x4, mid) so the position words can steer layout;
CLIP text encoder hidden 128, 3 layers, over :func:`~.tokenizer.demo_tokenizer`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

__all__ = ["SCHEDULE", "build_text_encoder", "build_unet", "build_vae", "make_pipeline", "make_scheduler"]

SCHEDULE: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "steps_offset": 1,
    "timestep_spacing": "leading",
}


def build_vae(scaling_factor: float = 1.0) -> AutoencoderKL:
    """The demo VAE: 64x64x3 ↔ 16x16x4, about 0.5 M parameters."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 32, 64),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,  # >= 4 channels per group: one channel per group erases each image's colour
        sample_size=64,
        scaling_factor=scaling_factor,
        mid_block_add_attention=False,
    )


def build_unet() -> UNet2DConditionModel:
    """The demo UNet: 16x16x4 latents, cross-attention (dim 128) at every resolution."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        block_out_channels=(64, 128, 128),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D",) * 3,
        up_block_types=("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=128,
        attention_head_dim=4,
        norm_num_groups=32,
    )


def build_text_encoder(tokenizer: CLIPTokenizer) -> CLIPTextModel:
    """The demo CLIP text encoder: hidden 128, 3 layers, 4 heads, quick_gelu (OpenAI CLIP layout)."""
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=512,
        num_attention_heads=4,
        num_hidden_layers=3,
        max_position_embeddings=tokenizer.model_max_length,
        hidden_act="quick_gelu",
        projection_dim=128,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModel(config)


def make_scheduler() -> Any:
    """The shipped default scheduler: DDIM over the SD1 training schedule."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(**SCHEDULE, clip_sample=False, set_alpha_to_one=False, prediction_type="epsilon")


def make_pipeline(vae: Any, text_encoder: Any, tokenizer: Any, unet: Any) -> StableDiffusionPipeline:
    """A standard ``StableDiffusionPipeline`` from the demo components (no safety checker)."""
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=make_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
