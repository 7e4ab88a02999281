"""Tiny, seeded, randomly initialised Stable Diffusion pipelines for tests and benchmarks.

Everything is built in-process from the CLIP tokenizer files shipped in ``assets/clip_tokenizer`` (no
network): SD1 (CLIP-L-like encoder, ``quick_gelu``), SD2 (OpenCLIP-like encoder: ``gelu``, pad token
``"!"``, v-prediction by default) and SDXL base (two encoders of different widths, 32 and 64, so that
single-file loading can tell them apart; UNet cross-attention 96 = 32 + 64, ``text_time`` embedding);
and an SDXL-refiner-shaped img2img pipeline (the 64-wide encoder alone).

The same seed gives the same weights on every run. The global torch RNG is left untouched.
:func:`write_tiny_model` writes a model in the three forms the loader meets: a diffusers folder, an
A1111-layout single file, and the weightless ``<stem>.config/`` folder beside it.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..catalog.probe import TEST_MARK, TEST_MARK_INDEX_KEY
from ..errors import ModelUnreadableError, RequestError

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline, StableDiffusionXLImg2ImgPipeline

    # the defining module (here and below): mypy reads diffusers' top level as its torch-less dummy objects
    from diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl import StableDiffusionXLPipeline
    from transformers import CLIPTextConfig, CLIPTokenizer

__all__ = [
    "TinyKind",
    "TinyModelFiles",
    "tiny_sd1_components",
    "tiny_sd2_components",
    "tiny_sdxl_components",
    "tiny_sdxl_refiner_components",
    "tiny_tokenizer",
    "write_tiny_model",
]

TinyKind = Literal["sd1", "sd2", "sdxl"]

#: Merges kept from the full CLIP table: 256 + 256 byte tokens + 488 merges + 2 specials = 1002 ids.
DEFAULT_MERGES = 488
_BYTE_TOKENS = 512
_TIME_DIM = 8  # SDXL micro-condition embedding width (256 in the real model)
_BOS, _EOS = "<|startoftext|>", "<|endoftext|>"
_SCHEDULE: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "steps_offset": 1,
    "timestep_spacing": "leading",
}


@dataclass(frozen=True, slots=True)
class TinyModelFiles:
    """Where :func:`write_tiny_model` put one tiny model, in each of its forms."""

    kind: TinyKind
    diffusers_dir: Path
    single_file: Path
    config_dir: Path


def tiny_tokenizer(pad_token: str = _EOS, *, num_merges: int = DEFAULT_MERGES) -> CLIPTokenizer:
    """A ``CLIPTokenizer`` over the first ``num_merges`` merges of the shipped OpenAI CLIP BPE table.

    Ids: the 256 byte characters, the same with ``</w>``, each kept merge joined (in merge order), then
    ``<|startoftext|>`` and ``<|endoftext|>`` (1002 ids by default). ``pad_token`` is
    ``"<|endoftext|>"`` for OpenAI CLIP (SD1, SDXL's first encoder) and ``"!"`` for OpenCLIP (SD2,
    SDXL's second encoder). ``model_max_length`` is 77, as in Stable Diffusion.
    """
    from transformers import CLIPTokenizer

    folder = importlib.resources.files("ml_lib.diffusion") / "assets" / "clip_tokenizer"
    full_vocab: dict[str, int] = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
    table = [line for line in lines if line and not line.startswith("#version")]
    if not 0 <= num_merges <= len(table):
        raise RequestError(f"num_merges must be between 0 and {len(table)}, got {num_merges}.")
    merges = [tuple(line.split(" ")) for line in table[:num_merges]]
    by_id = sorted(full_vocab, key=full_vocab.__getitem__)
    tokens = [*by_id[:_BYTE_TOKENS], *(a + b for a, b in merges), _BOS, _EOS]
    vocab = {token: index for index, token in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise ModelUnreadableError(
            f"The CLIP tokenizer files in {folder} give duplicate tokens; reinstall ml-lib to restore them."
        )
    return CLIPTokenizer(
        vocab=vocab,
        merges=merges,  # type: ignore[arg-type]  # BPE takes (a, b) pairs; annotated list[str]
        bos_token=_BOS,
        eos_token=_EOS,
        unk_token=_EOS,
        pad_token=pad_token,
        model_max_length=77,
    )


def _text_config(
    tokenizer: CLIPTokenizer, *, hidden: int, layers: int, act: str, projection_dim: int | None = None
) -> CLIPTextConfig:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_attention_heads=4,
        num_hidden_layers=layers,
        max_position_embeddings=tokenizer.model_max_length,
        hidden_act=act,
        projection_dim=projection_dim or hidden,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def _seeded(seed: int, build: Callable[[], Any]) -> Any:
    """``build()`` right after ``torch.manual_seed(seed)``, without disturbing the caller's RNG state."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _vae(seed: int, scaling_factor: float) -> Any:
    from diffusers import AutoencoderKL

    return _seeded(
        seed,
        lambda: AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
            up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
            block_out_channels=(32, 64),
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=32,
            sample_size=32,
            scaling_factor=scaling_factor,
        ),
    )


def _sd_pipeline(
    seed: int, *, layers: int, act: str, pad_token: str, linear: bool, per_block: int, scheduler: Any
) -> StableDiffusionPipeline:
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    tokenizer = tiny_tokenizer(pad_token)
    config = _text_config(tokenizer, hidden=32, layers=layers, act=act)
    unet = _seeded(
        seed,
        lambda: UNet2DConditionModel(
            sample_size=16,
            in_channels=4,
            out_channels=4,
            block_out_channels=(32, 64),
            layers_per_block=per_block,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=32,
            attention_head_dim=(2, 4),
            norm_num_groups=32,
            use_linear_projection=linear,
        ),
    )
    return StableDiffusionPipeline(
        vae=_vae(seed, 0.18215),
        text_encoder=_seeded(seed, lambda: CLIPTextModel(config)),
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def tiny_sd1_components(seed: int = 0) -> StableDiffusionPipeline:
    """SD1-shaped pipeline: CLIP-L-like encoder (hidden 32, 3 layers, quick_gelu), conv projections, DDIM."""
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler(
        **_SCHEDULE, clip_sample=False, set_alpha_to_one=False, prediction_type="epsilon"
    )
    return _sd_pipeline(
        seed, layers=3, act="quick_gelu", pad_token=_EOS, linear=False, per_block=2, scheduler=scheduler
    )


def tiny_sd2_components(seed: int = 0, *, prediction_type: str = "v_prediction") -> StableDiffusionPipeline:
    """SD2-shaped pipeline: OpenCLIP-like encoder (gelu, pad "!"), linear projections, DDIM, v-prediction."""
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler(
        **_SCHEDULE, clip_sample=False, set_alpha_to_one=False, prediction_type=prediction_type
    )
    return _sd_pipeline(
        seed, layers=2, act="gelu", pad_token="!", linear=True, per_block=1, scheduler=scheduler
    )


def _xl_unet(cross_attention_dim: int, projection_input_dim: int) -> Any:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2),
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=(2, 4),
        norm_num_groups=32,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=_TIME_DIM,
        projection_class_embeddings_input_dim=projection_input_dim,
    )


def tiny_sdxl_components(seed: int = 0) -> StableDiffusionXLPipeline:
    """SDXL-base-shaped pipeline: CLIP-L-like (32) + OpenCLIP-bigG-like (64, projection 32) encoders."""
    from diffusers import EulerDiscreteScheduler
    from diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl import StableDiffusionXLPipeline
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    tokenizer, tokenizer_2 = tiny_tokenizer(_EOS), tiny_tokenizer("!")
    config = _text_config(tokenizer, hidden=32, layers=2, act="quick_gelu")
    projection_dim = 32
    config_2 = _text_config(tokenizer_2, hidden=64, layers=2, act="gelu", projection_dim=projection_dim)
    # pooled text embeds of encoder 2 + 6 micro-conditions (original size, crop, target size)
    unet = _seeded(
        seed,
        lambda: _xl_unet(config.hidden_size + config_2.hidden_size, projection_dim + 6 * _TIME_DIM),
    )
    scheduler = EulerDiscreteScheduler(**_SCHEDULE, interpolation_type="linear", prediction_type="epsilon")
    return StableDiffusionXLPipeline(
        vae=_vae(seed, 0.13025),
        text_encoder=_seeded(seed, lambda: CLIPTextModel(config)),
        text_encoder_2=_seeded(seed, lambda: CLIPTextModelWithProjection(config_2)),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=scheduler,  # type: ignore[arg-type]  # annotated as a KarrasDiffusionSchedulers enum
    )


def tiny_sdxl_refiner_components(seed: int = 0) -> StableDiffusionXLImg2ImgPipeline:
    """SDXL-refiner-shaped img2img pipeline: the OpenCLIP-like encoder alone, aesthetic-score conditioning."""
    from diffusers import StableDiffusionXLImg2ImgPipeline

    base = tiny_sdxl_components(seed)
    encoder = base.text_encoder_2
    # pooled text embeds + 5 micro-conditions (original size, crop, aesthetic score)
    unet = _seeded(
        seed, lambda: _xl_unet(encoder.config.hidden_size, encoder.config.projection_dim + 5 * _TIME_DIM)
    )
    return StableDiffusionXLImg2ImgPipeline(
        vae=base.vae,
        text_encoder=None,
        text_encoder_2=encoder,
        tokenizer=None,
        tokenizer_2=base.tokenizer_2,
        unet=unet,
        scheduler=base.scheduler,
        requires_aesthetics_score=True,
        force_zeros_for_empty_prompt=False,
    )


_BUILDERS: dict[str, Callable[[int], Any]] = {
    "sd1": tiny_sd1_components,
    "sd2": tiny_sd2_components,
    "sdxl": tiny_sdxl_components,
}


def write_tiny_model(kind: TinyKind, root: Path, *, seed: int = 0, mark: bool = True) -> TinyModelFiles:
    """Build the tiny ``kind`` pipeline and write it under ``root`` in three forms.

    - ``root/<kind>-tiny-diffusers/``: a diffusers folder (``save_pretrained``, safetensors);
    - ``root/<kind>-tiny.safetensors``: the A1111/LDM single file;
    - ``root/<kind>-tiny.config/``: its weightless config folder, named ``<checkpoint stem>.config`` so the
      loader finds it beside the file.

    With ``mark`` (the default) all three carry the test-model mark: the catalog never chooses them
    automatically and plans give them a tiny profile; ``mark=False`` makes them pass for real checkpoints.
    """
    from .export import save_single_file, write_config_folder

    if kind not in _BUILDERS:
        raise RequestError(f"kind must be one of {sorted(_BUILDERS)}, not {kind!r}.")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    pipe = _BUILDERS[kind](seed)
    diffusers_dir = root / f"{kind}-tiny-diffusers"
    tmp = root / f".{diffusers_dir.name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        pipe.save_pretrained(tmp, safe_serialization=True)
        if diffusers_dir.exists():
            shutil.rmtree(diffusers_dir)
        os.replace(tmp, diffusers_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    metadata = {"modelspec.title": f"{kind}-tiny"}
    if mark:
        _mark(diffusers_dir)
        metadata[TEST_MARK] = "random weights"
    single_file = save_single_file(pipe, root / f"{kind}-tiny.safetensors", metadata=metadata)
    config_dir = write_config_folder(pipe, root / f"{kind}-tiny.config")
    if mark:
        _mark(config_dir)
    return TinyModelFiles(
        kind=kind, diffusers_dir=diffusers_dir, single_file=single_file, config_dir=config_dir
    )


def _mark(folder: Path) -> None:
    """Mark a diffusers folder as a test model (random weights): the catalog never chooses it by itself."""
    index = folder / "model_index.json"
    data = json.loads(index.read_text(encoding="utf-8"))
    data[TEST_MARK_INDEX_KEY] = "random weights"
    index.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    """``python -m ml_lib.diffusion.testing.tiny KIND FOLDER``: write a tiny random model to try the CLI."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m ml_lib.diffusion.testing.tiny",
        description="Write a tiny random-weight model (diffusers folder, A1111 single file, config folder).",
    )
    parser.add_argument("kind", choices=sorted(_BUILDERS))
    parser.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    files = write_tiny_model(args.kind, args.folder)
    print(f"wrote {files.single_file} (config {files.config_dir.name}/) and {files.diffusers_dir}")


if __name__ == "__main__":
    main()
