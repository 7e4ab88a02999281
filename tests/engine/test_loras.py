"""LoRAs through the engine: formats, weights per part, combination, exact unload, typed errors."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from ml_lib.diffusion import ImageGenerator, Settings
from ml_lib.diffusion.errors import ModelNotFoundError, UnsupportedModelError
from ml_lib.diffusion.output.infotext import parse_infotext
from ml_lib.diffusion.request import LoraRequest
from ml_lib.diffusion.testing.tiny import TinyModelFiles, tiny_sd1_components, tiny_sdxl_components
from ml_lib.diffusion.testing.tiny_adapters import write_tiny_lora

FAST = dict(width=64, height=64, steps=2, cfg_scale=5.0, sampler="Euler", seed=3, save=False)


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> ImageGenerator:
    with ImageGenerator(Settings(home=tmp_path_factory.mktemp("home")), device="cpu", pool_size=2) as g:
        yield g


@pytest.fixture(scope="module")
def loras(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("loras")
    pipe = tiny_sd1_components()
    files = {
        style: write_tiny_lora(pipe, root / f"style_{style}.safetensors", style=style, seed=1)
        for style in ("kohya", "kohya_blocks", "peft")
    }
    files["other"] = write_tiny_lora(pipe, root / "other.safetensors", seed=2)
    files["unet_only"] = write_tiny_lora(pipe, root / "unet_only.safetensors", seed=1, text_encoder=False)
    xl = tiny_sdxl_components()
    files["sdxl"] = write_tiny_lora(xl, root / "xl_style.safetensors", seed=1)
    loha = root / "loha.safetensors"
    save_file({"lora_unet_x.hada_w1_a": torch.zeros(2, 2), "lora_unet_x.alpha": torch.tensor(2.0)}, str(loha))
    files["loha"] = loha
    return files


def px(result) -> np.ndarray:
    return np.asarray(result.images[0], dtype=np.int16)


def run(gen: ImageGenerator, model: TinyModelFiles, *loras: LoraRequest, **kw):
    return gen.generate("a red circle", model=str(model.single_file), loras=loras, **{**FAST, **kw})


def test_weight_zero_is_base_and_unload_is_bit_exact(gen, tiny_sd1, loras) -> None:
    base_result = run(gen, tiny_sd1)
    pipe = gen._pipelines().get(base_result.plan.model, dtype="float32", device="cpu").pipe
    before = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    before_te = {k: v.clone() for k, v in pipe.text_encoder.state_dict().items()}
    zero = run(gen, tiny_sd1, LoraRequest(str(loras["kohya"]), 0.0))
    assert np.array_equal(px(zero), px(base_result))
    styled = run(gen, tiny_sd1, LoraRequest(str(loras["kohya"]), 1.0))
    assert np.abs(px(styled) - px(base_result)).mean() > 1
    again = run(gen, tiny_sd1)
    assert np.array_equal(px(again), px(base_result))
    after = pipe.unet.state_dict()
    assert set(after) == set(before) and all(torch.equal(after[k], before[k]) for k in before)
    after_te = pipe.text_encoder.state_dict()
    assert set(after_te) == set(before_te) and all(torch.equal(after_te[k], before_te[k]) for k in before_te)


def test_formats_give_the_same_image(gen, tiny_sd1, loras) -> None:
    images = [
        px(run(gen, tiny_sd1, LoraRequest(str(loras[s]), 0.8))) for s in ("kohya", "kohya_blocks", "peft")
    ]
    assert np.abs(images[0] - images[1]).max() <= 1
    assert np.abs(images[0] - images[2]).max() <= 1


def test_same_set_reproduces_and_parts_are_weighted_separately(gen, tiny_sd1, loras) -> None:
    path = str(loras["kohya"])
    first = px(run(gen, tiny_sd1, LoraRequest(path, 1.0)))
    second = px(run(gen, tiny_sd1, LoraRequest(path, 1.0)))
    assert np.array_equal(first, second)
    te_only = px(run(gen, tiny_sd1, LoraRequest(path, 0.0, te_weight=1.0)))
    unet_only = px(run(gen, tiny_sd1, LoraRequest(path, 1.0, te_weight=0.0)))
    unet_file = px(run(gen, tiny_sd1, LoraRequest(str(loras["unet_only"]), 1.0)))
    base = px(run(gen, tiny_sd1))
    for image in (te_only, unet_only):
        assert np.abs(image - base).mean() > 0.5 and np.abs(image - first).mean() > 0.5
    assert np.abs(unet_only - unet_file).max() <= 1  # the TE part at 0 is the same as no TE part


def test_two_loras_combine(gen, tiny_sd1, loras) -> None:
    a = px(run(gen, tiny_sd1, LoraRequest(str(loras["kohya"]), 0.7)))
    b = px(run(gen, tiny_sd1, LoraRequest(str(loras["other"]), 0.7)))
    both = run(gen, tiny_sd1, LoraRequest(str(loras["kohya"]), 0.7), LoraRequest(str(loras["other"]), 0.7))
    assert np.abs(px(both) - a).mean() > 0.5 and np.abs(px(both) - b).mean() > 0.5
    assert [lora.name for lora in both.plan.loras] == ["style_kohya", "other"]


def test_sdxl_lora_with_two_text_encoders(gen, tiny_sdxl, loras) -> None:
    base = px(run(gen, tiny_sdxl))
    styled = px(run(gen, tiny_sdxl, LoraRequest(str(loras["sdxl"]), 1.0)))
    te_only = px(run(gen, tiny_sdxl, LoraRequest(str(loras["sdxl"]), 0.0, te_weight=1.0)))
    assert np.abs(styled - base).mean() > 0.5 and np.abs(te_only - base).mean() > 0.1
    assert np.array_equal(px(run(gen, tiny_sdxl)), base)


def test_lycoris_variant_is_refused_before_loading(gen, tiny_sd1, loras) -> None:
    loads = gen._pipelines().loads
    with pytest.raises(UnsupportedModelError, match="LyCORIS LoHa"):
        gen.plan("a red circle", model=str(tiny_sd1.diffusers_dir), loras=(LoraRequest(str(loras["loha"])),))
    assert gen._pipelines().loads == loads  # refused by the resolve step: nothing was loaded


def test_infotext_carries_lora_tags(gen, tiny_sd1, loras, tmp_path: Path) -> None:
    result = run(
        gen,
        tiny_sd1,
        LoraRequest(str(loras["kohya"]), 0.6, te_weight=0.4),
        save=True,
        output_dir=str(tmp_path),
    )
    info = gen.info(result.paths[0])
    assert info.infotext is not None and "<lora:style_kohya:0.4:0.6>" in info.infotext
    assert parse_infotext(info.infotext).prompt.endswith("<lora:style_kohya:0.4:0.6>")
    assert info.plan is not None and info.plan.loras == result.plan.loras
    data = loras["kohya"].read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    addnet = hashlib.sha256(data[8 + header_len :]).hexdigest()[:12]  # kohya/A1111 "addnet" hash
    assert parse_infotext(info.infotext).lora_hashes == (("style_kohya", addnet),)


def test_lora_by_catalog_name(tiny_sd1, loras, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, model_roots=(loras["kohya"].parent,))
    with ImageGenerator(settings, device="cpu") as gen:
        plan = gen.plan("x", model=str(tiny_sd1.single_file), loras=(LoraRequest("STYLE_KOHYA", 0.5),))
        (use,) = plan.loras
        assert Path(use.path) == loras["kohya"].resolve() and use.unet_weight == use.te_weight == 0.5
        with pytest.raises(ModelNotFoundError, match="nor a LoRA name in the catalog"):
            gen.plan("x", model=str(tiny_sd1.single_file), loras=(LoraRequest("no_such_lora"),))


def test_lora_on_an_fp8_unet_computes_beside_it_and_unloads_exactly(gen, tiny_sd1, loras) -> None:
    # balanced on a CPU stores the UNet in fp8, where peft cannot fuse (and a fused delta would round away)
    base_result = run(gen, tiny_sd1, memory="balanced")
    pipe = gen._pipelines().get(base_result.plan.model, dtype="float32", device="cpu", memory="balanced").pipe
    assert any(p.dtype == torch.float8_e4m3fn for p in pipe.unet.parameters())
    before = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    unet_only = run(gen, tiny_sd1, LoraRequest(str(loras["unet_only"]), 1.0), memory="balanced")
    assert np.abs(px(unet_only) - px(base_result)).mean() > 1  # the LoRA computes in the UNet's forward
    plain = run(gen, tiny_sd1, LoraRequest(str(loras["unet_only"]), 1.0))  # fp16-free fp32 pipeline, fused
    assert np.abs(px(unet_only) - px(plain)).mean() < np.abs(px(unet_only) - px(base_result)).mean()
    assert np.array_equal(px(run(gen, tiny_sd1, memory="balanced")), px(base_result))
    after = pipe.unet.state_dict()
    assert {k for k in after if "lora" not in k} == set(before)
    assert all(torch.equal(after[k].float(), before[k].float()) for k in before)
