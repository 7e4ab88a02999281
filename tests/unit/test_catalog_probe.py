"""Kind, family and LoRA details from safetensors headers alone, for every kind and family."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml_lib.diffusion.catalog.families import Family, PredictionType
from ml_lib.diffusion.catalog.header import read_header
from ml_lib.diffusion.catalog.kinds import identify_header
from ml_lib.diffusion.catalog.lineage import civitai_base, derivative_of, speed_hint
from ml_lib.diffusion.catalog.records import ModelInfo, ModelKind
from ml_lib.diffusion.testing import fakes
from ml_lib.diffusion.testing import fakes_adapters as adapters


def _probe(
    tmp_path: Path, keys: fakes.Keys, meta: dict[str, str] | None = None, name: str = "m"
) -> ModelInfo:
    return identify_header(
        read_header(fakes.write_fake_safetensors(tmp_path / f"{name}.safetensors", keys, meta))
    )


def _xlabs_ip_keys() -> fakes.Keys:
    """XLabs' Flux IP-Adapter layout (as InvokeAI and diffusers' converter read it)."""
    keys: fakes.Keys = {f"ip_adapter_proj_model.{n}": ("BF16", (4096,)) for n in ("norm.bias", "norm.weight")}
    keys["ip_adapter_proj_model.proj.weight"] = ("BF16", (65536, 768))
    for i in range(2):
        for kv in ("k", "v"):
            stem = f"double_blocks.{i}.processor.ip_adapter_double_stream_{kv}_proj"
            keys[f"{stem}.weight"] = ("BF16", (3072, 4096))
            keys[f"{stem}.bias"] = ("BF16", (3072,))
    return keys


CASES = [
    ("sd1-ckpt", lambda: fakes.checkpoint_keys("sd1"), ModelKind.CHECKPOINT, Family.SD1, ""),
    ("sd2-ckpt", lambda: fakes.checkpoint_keys("sd2"), ModelKind.CHECKPOINT, Family.SD2, ""),
    ("sdxl-ckpt", lambda: fakes.checkpoint_keys("sdxl"), ModelKind.CHECKPOINT, Family.SDXL, ""),
    ("refiner", lambda: fakes.checkpoint_keys("sdxl-refiner"), ModelKind.CHECKPOINT, Family.SDXL_REFINER, ""),
    ("sdxl-unet", lambda: fakes.unet_keys("sdxl"), ModelKind.UNET, Family.SDXL, ""),
    ("sd1-unet-bare", lambda: fakes.unet_keys("sd1", prefix=""), ModelKind.UNET, Family.SD1, ""),
    ("sd3", lambda: fakes.sd3_transformer_keys(), ModelKind.UNET, Family.SD3, "3-medium"),
    ("sd35", lambda: fakes.sd3_transformer_keys(blocks=38), ModelKind.UNET, Family.SD3, "3.5-large"),
    ("flux-dev", lambda: fakes.flux_transformer_keys(), ModelKind.UNET, Family.FLUX, "flux-dev"),
    ("flux-s", lambda: fakes.flux_transformer_keys(dev=False), ModelKind.UNET, Family.FLUX, "flux-schnell"),
    (
        "flux-full",
        lambda: {
            **fakes.flux_transformer_keys("model.diffusion_model."),
            **fakes.vae_keys("vae.", 16, False),
        },
        ModelKind.CHECKPOINT,
        Family.FLUX,
        "flux-dev",
    ),
    ("lora-sd1", lambda: adapters.lora_keys("sd1"), ModelKind.LORA, Family.SD1, "LoRA"),
    ("lora-sd2", lambda: adapters.lora_keys("sd2"), ModelKind.LORA, Family.SD2, "LoRA"),
    ("lora-xl-peft", lambda: adapters.lora_keys("sdxl", style="peft"), ModelKind.LORA, Family.SDXL, "LoRA"),
    (
        "lora-xl-diff",
        lambda: adapters.lora_keys("sdxl", style="diffusers"),
        ModelKind.LORA,
        Family.SDXL,
        "LoRA",
    ),
    ("loha", lambda: adapters.lora_keys("sdxl", network="loha"), ModelKind.LORA, Family.SDXL, "LoHa"),
    ("lokr", lambda: adapters.lora_keys("sd1", network="lokr"), ModelKind.LORA, Family.UNKNOWN, "LoKr"),
    ("dora", lambda: adapters.lora_keys("sd1", network="dora"), ModelKind.LORA, Family.SD1, "DoRA"),
    ("cn-sd1", lambda: adapters.controlnet_keys("sd1"), ModelKind.CONTROLNET, Family.SD1, "full"),
    (
        "cn-lora",
        lambda: adapters.controlnet_keys("sdxl", control_lora=True),
        ModelKind.CONTROLNET,
        Family.SDXL,
        "control-lora",
    ),
    ("vae", lambda: fakes.vae_keys(), ModelKind.VAE, Family.UNKNOWN, "4-channel"),
    ("ip-sd1", lambda: adapters.ip_adapter_keys("sd1"), ModelKind.IP_ADAPTER, Family.SD1, "base"),
    (
        "ip-xl+",
        lambda: adapters.ip_adapter_keys("sdxl", plus=True),
        ModelKind.IP_ADAPTER,
        Family.SDXL,
        "plus",
    ),
    ("ip-flux-xlabs", lambda: _xlabs_ip_keys(), ModelKind.IP_ADAPTER, Family.FLUX, "flux"),
    ("vit-h", lambda: fakes.clip_vision_keys(), ModelKind.IMAGE_ENCODER, Family.UNKNOWN, "ViT-H/14"),
    (
        "vit-g",
        lambda: fakes.clip_vision_keys(1664, 48),
        ModelKind.IMAGE_ENCODER,
        Family.UNKNOWN,
        "ViT-bigG/14",
    ),
    ("clip-l", lambda: fakes.clip_text_keys(""), ModelKind.TEXT_ENCODER, Family.UNKNOWN, "CLIP-L"),
    ("t5", lambda: fakes.t5_keys(), ModelKind.TEXT_ENCODER, Family.UNKNOWN, "T5-XXL"),
    ("ti-sd1", lambda: adapters.embedding_keys("sd1"), ModelKind.EMBEDDING, Family.SD1, "4 vectors"),
    ("ti-sd2", lambda: adapters.embedding_keys("sd2", 2), ModelKind.EMBEDDING, Family.SD2, "2 vectors"),
    ("ti-xl", lambda: adapters.embedding_keys("sdxl", 8), ModelKind.EMBEDDING, Family.SDXL, "8 vectors"),
]


@pytest.mark.parametrize(("name", "keys", "kind", "family", "variant"), CASES, ids=[c[0] for c in CASES])
def test_kind_and_family(
    tmp_path: Path, name: str, keys, kind: ModelKind, family: Family, variant: str
) -> None:
    info = _probe(tmp_path, keys())
    assert (info.kind, info.family, info.variant) == (kind, family, variant), info.reason
    assert info.reason


def test_unknown_layout_says_why(tmp_path: Path) -> None:
    info = _probe(tmp_path, {"foo.bar": ("F16", (3, 3)), "baz": ("F32", (1,))})
    assert (
        info.kind is ModelKind.UNKNOWN
        and "no matcher knows this layout" in info.reason
        and "foo.bar" in info.reason
    )
    assert "no tensors" in _probe(tmp_path, {}, name="empty").reason


def test_vae_family_from_name_only_when_it_says_so(tmp_path: Path) -> None:
    assert _probe(tmp_path, fakes.vae_keys(), name="sdxl_vae").family is Family.SDXL
    flux = _probe(tmp_path, fakes.vae_keys(latent=16, quant=False), name="ae")
    assert flux.family is Family.FLUX and "16 latent channels" in flux.reason


def test_kohya_lora_details(tmp_path: Path) -> None:
    tags = {"10_sks dog": {"dog": 12, " grass": 3, "sks": 12}, "5_style": {"dog": 4, "sky": 1}}
    meta = adapters.kohya_metadata(
        "sd_v1",
        rank=16,
        alpha=8,
        tags=tags,
        output_name="sksdog_v2",
        resolution="(768, 512)",
        extra={
            "modelspec.trigger_phrase": "sks dog, photo",
            "ss_datasets": json.dumps([{"subsets": [{"class_tokens": "sks"}]}]),
        },
    )
    info = _probe(tmp_path, adapters.lora_keys("sd1", rank=16), meta)
    lora = info.lora
    assert lora is not None and info.family is Family.SD1
    assert (lora.style, lora.network, lora.rank, lora.alpha) == ("kohya", "LoRA", 16, 8.0)
    assert lora.parts == ("unet", "text_encoder") and lora.resolution == (768, 512)
    assert [(t.tag, t.count) for t in lora.top_tags] == [("dog", 16), ("sks", 12), ("grass", 3), ("sky", 1)]
    assert lora.trigger_words == ("sks dog", "photo", "sks", "style")
    assert (lora.output_name, lora.network_module, lora.images) == ("sksdog_v2", "networks.lora", 120)


def test_lora_metadata_and_shapes(tmp_path: Path) -> None:
    unet_only = _probe(
        tmp_path, adapters.lora_keys("sdxl", text_encoder=False), adapters.kohya_metadata("sdxl_base_v1-0")
    )
    assert unet_only.family is Family.SDXL and unet_only.lora.parts == ("unet",)  # type: ignore[union-attr]
    v = _probe(tmp_path, adapters.lora_keys("sd2"), adapters.kohya_metadata("sd_v2_v"), name="v")
    assert v.family is Family.SD2 and v.prediction_type is PredictionType.V_PREDICTION
    disagree = _probe(tmp_path, adapters.lora_keys("sdxl"), adapters.kohya_metadata("sd_v1"), name="d")
    assert disagree.family is Family.SDXL and "disagrees; shapes win" in disagree.reason
    # LoKr factors hide the widths: the metadata gives the family.
    lokr = _probe(tmp_path, adapters.lora_keys("sdxl", network="lokr", text_encoder=False), {"ss_base_model_version":
                  "sdxl_base_v1-0"}, name="k")  # fmt: skip
    assert lokr.variant == "LoKr" and lokr.family is Family.SDXL and "ss_base_model_version" in lokr.reason
    locon = _probe(tmp_path, adapters.lora_keys("sd1"), adapters.kohya_metadata(module="lycoris.kohya", extra={
        "ss_network_args": json.dumps({"algo": "locon", "conv_dim": 4})}), name="c")  # fmt: skip
    assert locon.variant == "LoCon"
    conv = dict(adapters.lora_keys("sd1"))
    conv["lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight"] = ("F16", (8, 320, 3, 3))
    assert _probe(tmp_path, conv, name="conv").variant == "LoCon"
    flux = {
        f"transformer.single_transformer_blocks.{i}.attn.to_k.lora_A.weight": ("BF16", (16, 3072))
        for i in range(3)
    }
    flux_info = _probe(tmp_path, flux, name="f")
    assert flux_info.family is Family.FLUX and flux_info.lora.parts == ("transformer",)  # type: ignore[union-attr]
    assert (
        _probe(tmp_path, {"lora_unet_x.lora_down.weight": ("F16", (4, 7))}, name="u").family is Family.UNKNOWN
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sdxl_lightning_4step_lora", ("Lightning", 4, 1.0, "Euler")),
        ("Hyper-SDXL-8steps-CFG-lora", ("Hyper", 8, 5.0, "DDIM")),
        ("Hyper-SD15-1step-lora", ("Hyper", 1, 1.0, "TCD")),
        ("lcm-lora-sdxl", ("LCM", 4, 1.5, "LCM")),
        ("dmd2_sdxl_4step_lora", ("DMD2", 4, 1.0, "LCM")),
        ("TCD-SDXL-LoRA", ("TCD", 4, 1.0, "TCD")),
        ("sd_xl_turbo_lora_v1", ("Turbo", 4, 1.0, "Euler a")),
    ],
)
def test_speed_loras(name: str, expected: tuple[str, int, float, str]) -> None:
    hint = speed_hint([("file name", name)])
    assert hint is not None and (hint.name, hint.steps, hint.cfg, hint.sampler) == expected


@pytest.mark.parametrize("name", ["hyperrealistic_style", "lightningbolt", "turbocharged_cars", "calcium"])
def test_no_false_speed_loras(name: str) -> None:
    assert speed_hint([("file name", name)]) is None


def test_derivatives_and_civitai() -> None:
    found = derivative_of([("modelspec.title", "Illustrious-XL v1"), ("file name", "pony")])
    assert found is not None and (found.derivative, found.reason) == (
        "Illustrious",
        "modelspec.title 'Illustrious-XL v1'",
    )
    noob = derivative_of([("ss_sd_model_name", "noobaiXLNAIXL_vPred10.safetensors")])
    assert noob is not None and noob.derivative == "NoobAI"
    assert derivative_of([("file name", "dreamshaper_8")]) is None
    pony, sd15 = civitai_base("Pony"), civitai_base("SD 1.5")
    assert pony is not None and (pony.family, pony.derivative) == (Family.SDXL, "Pony")
    assert sd15 is not None and (sd15.family, sd15.derivative) == (Family.SD1, None)
    assert civitai_base("Something New") is None
