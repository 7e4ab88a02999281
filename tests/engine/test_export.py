"""Single-file export: A1111/LDM key layout, exact round trip through ``from_single_file``, same images."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import (
    StableDiffusionPipeline,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from safetensors import safe_open

from ml_lib.diffusion.errors import DiskFullError, OutputError, OutputNotWritableError, UnsupportedModelError
from ml_lib.diffusion.testing.export import save_single_file, write_config_folder
from ml_lib.diffusion.testing.ldm_layout import to_ldm_state_dict
from ml_lib.diffusion.testing.tiny import (
    TinyModelFiles,
    tiny_sd1_components,
    tiny_sd2_components,
    tiny_sdxl_components,
    tiny_sdxl_refiner_components,
)

PIPELINES: dict[str, type] = {
    "sd1": StableDiffusionPipeline,
    "sd2": StableDiffusionPipeline,
    "sdxl": StableDiffusionXLPipeline,
}
BUILDERS: dict[str, Callable[..., Any]] = {
    "sd1": tiny_sd1_components,
    "sd2": tiny_sd2_components,
    "sdxl": tiny_sdxl_components,
}
MODELS = ("unet", "vae", "text_encoder", "text_encoder_2")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")

#: Canonical names of the original checkpoints, per family, that the export must produce.
CANONICAL = {
    "sd1": [
        "model.diffusion_model.input_blocks.0.0.weight",
        "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight",
        "model.diffusion_model.input_blocks.3.0.op.weight",
        "model.diffusion_model.middle_block.1.proj_in.weight",
        "model.diffusion_model.output_blocks.2.1.conv.weight",  # upsampler of a block without attention
        "model.diffusion_model.output_blocks.3.0.skip_connection.weight",
        "model.diffusion_model.out.2.weight",
        "first_stage_model.decoder.conv_out.weight",
        "first_stage_model.encoder.down.1.block.0.nin_shortcut.weight",
        "first_stage_model.decoder.up.1.upsample.conv.weight",
        "first_stage_model.encoder.mid.attn_1.q.weight",
        "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
        "cond_stage_model.transformer.text_model.encoder.layers.2.self_attn.q_proj.weight",
        "cond_stage_model.transformer.text_model.final_layer_norm.weight",
    ],
    "sd2": [
        "model.diffusion_model.input_blocks.0.0.weight",
        "model.diffusion_model.input_blocks.2.0.op.weight",
        "first_stage_model.decoder.conv_out.weight",
        "cond_stage_model.model.token_embedding.weight",
        "cond_stage_model.model.positional_embedding",
        "cond_stage_model.model.ln_final.weight",
        "cond_stage_model.model.transformer.resblocks.1.attn.in_proj_weight",
        "cond_stage_model.model.transformer.resblocks.1.attn.in_proj_bias",
        "cond_stage_model.model.transformer.resblocks.1.attn.out_proj.weight",
        "cond_stage_model.model.transformer.resblocks.1.mlp.c_fc.weight",
        "cond_stage_model.model.transformer.resblocks.1.ln_2.bias",
    ],
    "sdxl": [
        "model.diffusion_model.input_blocks.0.0.weight",
        "model.diffusion_model.input_blocks.4.1.transformer_blocks.1.attn2.to_k.weight",
        "model.diffusion_model.label_emb.0.0.weight",
        "model.diffusion_model.output_blocks.2.2.conv.weight",  # upsampler after the block's attention
        "first_stage_model.decoder.conv_out.weight",
        "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight",
        "conditioner.embedders.1.model.text_projection",
        "conditioner.embedders.1.model.positional_embedding",
        "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight",
    ],
}
TEXT_PREFIXES = {
    "sd1": ("cond_stage_model.transformer.text_model.",),
    "sd2": ("cond_stage_model.model.",),
    "sdxl": ("conditioner.embedders.0.transformer.text_model.", "conditioner.embedders.1.model."),
}


@dataclass(frozen=True)
class Loaded:
    kind: str
    files: TinyModelFiles
    from_folder: Any
    from_file: Any


def _load_both(kind: str, files: TinyModelFiles) -> Loaded:
    cls = PIPELINES[kind]
    from_folder = cls.from_pretrained(str(files.diffusers_dir), local_files_only=True)
    from_file = cls.from_single_file(
        str(files.single_file), config=str(files.config_dir), local_files_only=True
    )
    for pipe in (from_folder, from_file):
        pipe.set_progress_bar_config(disable=True)
    return Loaded(kind, files, from_folder, from_file)


@pytest.fixture(scope="module", params=sorted(PIPELINES))
def loaded(request: pytest.FixtureRequest) -> Loaded:
    """The tiny model of one family, loaded from its diffusers folder and from its single file."""
    return _load_both(request.param, request.getfixturevalue(f"tiny_{request.param}"))


def _header(path: Path) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    with safe_open(str(path), framework="pt") as handle:
        shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118
        return shapes, handle.metadata() or {}


def _assert_same_weights(expected: Any, actual: Any) -> None:
    for name in MODELS:
        want, got = getattr(expected, name, None), getattr(actual, name, None)
        assert (want is None) == (got is None), name
        if want is None:
            continue
        want_state, got_state = want.state_dict(), got.state_dict()
        assert want_state.keys() == got_state.keys(), name
        different = [k for k in want_state if not torch.equal(want_state[k], got_state[k])]
        assert different == [], f"{name}: {different[:5]}"


def test_single_file_loads_back_to_the_original_tensors(loaded: Loaded) -> None:
    original = BUILDERS[loaded.kind](seed=0)
    _assert_same_weights(original, loaded.from_folder)
    _assert_same_weights(original, loaded.from_file)


def test_single_file_and_diffusers_folder_give_the_same_image(loaded: Loaded) -> None:
    images = [
        pipe(
            "a red cube on a table",
            negative_prompt="blurry",
            num_inference_steps=2,
            guidance_scale=5.0,
            height=32,
            width=32,
            generator=torch.Generator("cpu").manual_seed(7),
            output_type="np",
        ).images
        for pipe in (loaded.from_folder, loaded.from_file)
    ]
    assert images[0].shape == (1, 32, 32, 3)
    assert float(images[0].std()) > 0.0
    assert np.array_equal(images[0], images[1])


@pytest.mark.parametrize("kind", sorted(CANONICAL))
def test_exported_keys_follow_the_ldm_layout(kind: str, request: pytest.FixtureRequest) -> None:
    files: TinyModelFiles = request.getfixturevalue(f"tiny_{kind}")
    shapes, metadata = _header(files.single_file)
    missing = [key for key in CANONICAL[kind] if key not in shapes]
    assert missing == []
    allowed = ("model.diffusion_model.", "first_stage_model.", *TEXT_PREFIXES[kind])
    assert [k for k in shapes if not k.startswith(allowed)] == []
    diffusers_words = ("down_blocks", "up_blocks", "mid_block", "resnets")
    assert [k for k in shapes if any(word in k for word in diffusers_words)] == []
    vae_attn = "first_stage_model.{}.mid.attn_1.{}.weight"
    assert shapes[vae_attn.format("encoder", "q")] == (64, 64, 1, 1)  # a 1x1 conv, as originally stored
    assert shapes[vae_attn.format("decoder", "proj_out")] == (64, 64, 1, 1)
    assert metadata["modelspec.prediction_type"] == ("v" if kind == "sd2" else "epsilon")
    assert metadata["format"] == "pt"
    if kind == "sd2":
        assert shapes["cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight"] == (3 * 32, 32)
        assert not any(k.startswith("cond_stage_model.model.text_model") for k in shapes)
    if kind == "sdxl":
        # nn.Linear weight (projection 32, width 64) stored transposed, as OpenCLIP keeps it
        assert shapes["conditioner.embedders.1.model.text_projection"] == (64, 32)
        in_proj = "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight"
        assert shapes[in_proj] == (3 * 64, 64)


def test_config_folder_holds_configs_and_no_weights(tiny_sdxl: TinyModelFiles) -> None:
    folder = tiny_sdxl.config_dir
    assert folder.name == tiny_sdxl.single_file.stem + ".config"
    assert folder.parent == tiny_sdxl.single_file.parent
    for name in ("model_index.json", "unet/config.json", "vae/config.json", "text_encoder/config.json"):
        assert (folder / name).is_file(), name
    assert (folder / "text_encoder_2" / "config.json").is_file()
    assert (folder / "scheduler" / "scheduler_config.json").is_file()
    assert any((folder / "tokenizer_2").iterdir())
    assert [p for p in folder.rglob("*") if p.name.endswith(WEIGHT_SUFFIXES)] == []
    assert [p.name for p in folder.parent.iterdir() if p.name.startswith(".")] == []  # no temp leftovers


def test_refiner_exports_openclip_as_embedder_0_and_loads_back(tmp_path: Path) -> None:
    refiner = tiny_sdxl_refiner_components(seed=0)
    path = save_single_file(refiner, tmp_path / "refiner-tiny.safetensors")
    config = write_config_folder(refiner, tmp_path / "refiner-tiny.config")
    shapes, _ = _header(path)
    text_keys = [k for k in shapes if not k.startswith(("model.diffusion_model.", "first_stage_model."))]
    assert text_keys and all(k.startswith("conditioner.embedders.0.model.") for k in text_keys)
    assert "conditioner.embedders.0.model.text_projection" in shapes
    loaded = StableDiffusionXLImg2ImgPipeline.from_single_file(
        str(path), config=str(config), local_files_only=True
    )
    assert loaded.text_encoder is None
    _assert_same_weights(refiner, loaded)


def test_dtype_metadata_and_atomic_write(tmp_path: Path) -> None:
    pipe = tiny_sd1_components(seed=0)
    target = tmp_path / "nested" / "half.safetensors"
    write_config_folder(pipe, tmp_path / "nested" / "half.config")
    write_config_folder(pipe, tmp_path / "nested" / "half.config")  # replaces the existing folder
    save_single_file(pipe, target, metadata={"modelspec.title": "half", "format": "pt"}, dtype=torch.float16)
    with safe_open(str(target), framework="pt") as handle:
        dtypes = {handle.get_tensor(key).dtype for key in handle.keys()}  # noqa: SIM118
        assert handle.metadata()["modelspec.title"] == "half"
    assert dtypes == {torch.float16}
    assert sorted(p.name for p in target.parent.iterdir()) == ["half.config", "half.safetensors"]
    assert pipe.unet.dtype == torch.float32  # the exported pipeline is left as it was


def test_text_layout_rule_and_override() -> None:
    pipe = tiny_sd1_components(seed=0)
    auto = to_ldm_state_dict(pipe.unet, pipe.vae, pipe.text_encoder)
    forced = to_ldm_state_dict(pipe.unet, pipe.vae, pipe.text_encoder, text_layout="open_clip")
    assert any(k.startswith("cond_stage_model.transformer.text_model.") for k in auto)
    assert any(k.startswith("cond_stage_model.model.transformer.resblocks.") for k in forced)
    sd2 = tiny_sd2_components(seed=0)
    sd2_state = to_ldm_state_dict(sd2.unet, sd2.vae, sd2.text_encoder)
    assert any(k.startswith("cond_stage_model.model.") for k in sd2_state)


def test_unconvertible_components_raise() -> None:
    pipe = tiny_sd1_components(seed=0)
    lcm_unet = UNet2DConditionModel.from_config(pipe.unet.config, time_cond_proj_dim=8)  # LCM-style
    with pytest.raises(UnsupportedModelError, match=r"time_embedding\.cond_proj"):
        to_ldm_state_dict(lcm_unet, pipe.vae, pipe.text_encoder)
    with pytest.raises(UnsupportedModelError, match="text_layout"):
        to_ldm_state_dict(pipe.unet, pipe.vae, pipe.text_encoder, text_layout="t5")  # type: ignore[arg-type]
    xl = tiny_sdxl_components(seed=0)
    with pytest.raises(UnsupportedModelError, match="SDXL"):
        to_ldm_state_dict(xl.unet, xl.vae, xl.text_encoder, xl.text_encoder_2, text_layout="clip")
    with pytest.raises(UnsupportedModelError, match="unet"):
        save_single_file({"vae": pipe.vae, "text_encoder": pipe.text_encoder}, "never-written.safetensors")


def test_a_short_write_is_detected_and_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    import safetensors.torch

    real_save = safetensors.torch.save_file

    def short_save(tensors: dict[str, torch.Tensor], filename: str, metadata: dict[str, str]) -> None:
        real_save(tensors, filename, metadata=metadata)
        os.truncate(filename, os.path.getsize(filename) - 16)  # what a full disk can leave, silently

    monkeypatch.setattr(safetensors.torch, "save_file", short_save)
    pipe = tiny_sd1_components(seed=0)
    with pytest.raises(OutputError, match="came out short"):
        save_single_file(pipe, tmp_path / "short.safetensors")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: shutil._ntuple_diskusage(1, 1, 0))
    with pytest.raises(DiskFullError):
        save_single_file(pipe, tmp_path / "short.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_target_raises_a_fixable_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(OutputNotWritableError, match="writable"):
        save_single_file(tiny_sd1_components(seed=0), tmp_path / "a-file" / "model.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
