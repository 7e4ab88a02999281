"""Scanning A1111, ComfyUI (with extra_model_paths.yaml) and Hugging Face cache layouts into the catalog;
names, hashes, sidecars, and the never-unpickled canary."""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path

import pytest

from ml_lib.diffusion.catalog.catalog import Catalog, ScanReport
from ml_lib.diffusion.catalog.families import Family
from ml_lib.diffusion.catalog.records import ModelKind, ModelRecord, Status, StorageFormat
from ml_lib.diffusion.db import connect
from ml_lib.diffusion.errors import AmbiguousModelError, ModelNotFoundError
from ml_lib.diffusion.testing import fakes
from ml_lib.diffusion.testing import fakes_adapters as adapters

W = fakes.write_fake_safetensors


class Canary:
    """Unpickling this creates a folder: proof that a pickle was executed."""

    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (self.target,))


def canary_files(folder: Path, canary: Path) -> None:
    """The canary as a raw pickle and as a torch-style zip, under model suffixes."""
    raw = pickle.dumps(Canary(canary), protocol=4)
    (folder / "evil.ckpt").write_bytes(raw)
    (folder / "evil_renamed.safetensors").write_bytes(raw)
    with zipfile.ZipFile(folder / "evil_zip.safetensors", "w") as zf:
        zf.writestr("archive/data.pkl", raw)


def _hf_repo(hub: Path, repo: str, files: dict[str, bytes | fakes.Keys]) -> None:
    base = hub / f"models--{repo.replace('/', '--')}"
    rev = "0123456789abcdef0123456789abcdef01234567"
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(rev)
    for i, (rel, content) in enumerate(files.items()):
        blob = base / "blobs" / f"blob{i:04d}"
        blob.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            blob.write_bytes(content)
        else:
            W(blob, content)
        link = base / "snapshots" / rev / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))


def build_library(base: Path) -> tuple[Path, ...]:
    """Both web-UI layouts, an extra_model_paths.yaml, a diffusers folder and a Hugging Face cache."""
    webui, comfy, hub = base / "webui", base / "ComfyUI", base / "hub"
    sd = webui / "models" / "Stable-diffusion"
    W(sd / "sd15" / "dreamshaper_8.safetensors", fakes.checkpoint_keys("sd1"))
    (sd / "sd15" / "dreamshaper_8.json").write_text(json.dumps({
        "description": "all-round [bold]model", "sd version": "SD1", "activation text": "", "preferred weight": "0.8",
        "negative text": "blurry", "notes": "from civitai"}))  # fmt: skip
    (sd / "sd15" / "dreamshaper_8.preview.png").write_bytes(b"\x89PNG")
    W(sd / "ponyDiffusionV6XL.safetensors", fakes.checkpoint_keys("sdxl"))
    (sd / "ponyDiffusionV6XL.civitai.info").write_text(json.dumps({
        "name": "V6 (start with this one)", "baseModel": "Pony", "trainedWords": ["score_9", "score_8_up"],
        "model": {"name": "Pony Diffusion V6 XL", "nsfw": False, "tags": ["anime", "base model"]}}))  # fmt: skip
    tags = {"10_sks dog": {"dog": 20, "grass": 4}}
    W(
        webui / "models/Lora/characters/sksdog.safetensors",
        adapters.lora_keys("sd1"),
        adapters.kohya_metadata(tags=tags),
    )
    W(webui / "models/Lora/styles/sksdog.safetensors", adapters.lora_keys("sdxl", text_encoder=False))
    W(webui / "models/Lora/sdxl_lightning_4step_lora.safetensors", adapters.lora_keys("sdxl", style="peft"))
    W(webui / "models/LyCORIS/loha_style.safetensors", adapters.lora_keys("sdxl", network="loha"))
    W(webui / "models/ControlNet/control_v11p_sd15_canny.safetensors", adapters.controlnet_keys("sd1"))
    W(webui / "models/VAE/sdxl_vae.safetensors", fakes.vae_keys())
    W(webui / "embeddings/easynegative.safetensors", adapters.embedding_keys("sd1"))
    canary_files(sd, base / "CANARY")
    models = comfy / "models"
    W(models / "checkpoints/sd_xl_refiner_1.0.safetensors", fakes.checkpoint_keys("sdxl-refiner"))
    W(models / "loras/sd1_style.safetensors", adapters.lora_keys("sd1", style="diffusers"))
    W(models / "ipadapter/ip-adapter-plus_sdxl.safetensors", adapters.ip_adapter_keys("sdxl", plus=True))
    W(models / "clip_vision/clip_vit_h.safetensors", fakes.clip_vision_keys())
    W(models / "unet/flux1-schnell.safetensors", fakes.flux_transformer_keys(dev=False))
    W(models / "clip/t5xxl_fp16.safetensors", fakes.t5_keys())
    W(
        models / "controlnet/control-lora-canny-rank128.safetensors",
        adapters.controlnet_keys("sdxl", control_lora=True),
    )
    pipe = models / "diffusers" / "tiny-sd"
    (pipe / "unet").mkdir(parents=True)
    index = {"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"]}
    (pipe / "model_index.json").write_text(json.dumps(index))
    (pipe / "unet" / "config.json").write_text(json.dumps({"cross_attention_dim": 768}))
    W(pipe / "unet" / "diffusion_pytorch_model.safetensors", {"conv_in.weight": ("F16", (320, 4, 3, 3))})
    extra = base / "extra_webui"
    W(extra / "models/Stable-diffusion/extra_sd2.safetensors", fakes.checkpoint_keys("sd2"))
    W(extra / "models/LyCORIS/extra_lokr.safetensors", adapters.lora_keys("sd1", network="lokr"))
    (comfy / "extra_model_paths.yaml").write_text(
        "a111:\n    base_path: ../extra_webui\n    checkpoints: models/Stable-diffusion\n"
        "    loras: |\n        models/Lora\n        models/LyCORIS\n    upscale_models: models/ESRGAN\n"
        "other:\n    base_path: /nonexistent/place\n    vae: vae\n"
    )
    _hf_repo(hub, "someone/tiny-pipe", {
        "model_index.json": json.dumps({"_class_name": "StableDiffusionXLPipeline",
                                        "unet": ["diffusers", "UNet2DConditionModel"]}).encode(),
        "unet/config.json": b"{}",
        "unet/diffusion_pytorch_model.safetensors": {"conv_in.weight": ("F16", (320, 4, 3, 3))}})  # fmt: skip
    _hf_repo(
        hub,
        "someone/lora-repo",
        {"pytorch_lora_weights.safetensors": adapters.lora_keys("sdxl", style="peft")},
    )
    return webui, comfy, hub


@pytest.fixture(scope="session")
def library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Catalog, ScanReport, Path]:
    base = tmp_path_factory.mktemp("library")
    roots = build_library(base)
    catalog = Catalog(connect(base / "db.sqlite3"), roots, builtins=False)
    return catalog, catalog.scan(), base


def _by_rel(catalog: Catalog) -> dict[str, ModelRecord]:
    return {r.rel_name: r for r in catalog.find()}


EXPECTED = {
    "sd15/dreamshaper_8": ("a1111", ModelKind.CHECKPOINT, Family.SD1),
    "ponyDiffusionV6XL": ("a1111", ModelKind.CHECKPOINT, Family.SDXL),
    "characters/sksdog": ("a1111", ModelKind.LORA, Family.SD1),
    "styles/sksdog": ("a1111", ModelKind.LORA, Family.SDXL),
    "loha_style": ("a1111", ModelKind.LORA, Family.SDXL),
    "sdxl_lightning_4step_lora": ("a1111", ModelKind.LORA, Family.SDXL),
    "control_v11p_sd15_canny": ("a1111", ModelKind.CONTROLNET, Family.SD1),
    "sdxl_vae": ("a1111", ModelKind.VAE, Family.SDXL),
    "easynegative": ("a1111", ModelKind.EMBEDDING, Family.SD1),
    "sd_xl_refiner_1.0": ("comfyui", ModelKind.CHECKPOINT, Family.SDXL_REFINER),
    "sd1_style": ("comfyui", ModelKind.LORA, Family.SD1),
    "ip-adapter-plus_sdxl": ("comfyui", ModelKind.IP_ADAPTER, Family.SDXL),
    "clip_vit_h": ("comfyui", ModelKind.IMAGE_ENCODER, Family.UNKNOWN),
    "flux1-schnell": ("comfyui", ModelKind.UNET, Family.FLUX),
    "t5xxl_fp16": ("comfyui", ModelKind.TEXT_ENCODER, Family.UNKNOWN),
    "control-lora-canny-rank128": ("comfyui", ModelKind.CONTROLNET, Family.SDXL),
    "tiny-sd": ("comfyui", ModelKind.CHECKPOINT, Family.SD1),
    "extra_sd2": ("extra-paths:a111", ModelKind.CHECKPOINT, Family.SD2),
    "extra_lokr": ("extra-paths:a111", ModelKind.LORA, Family.UNKNOWN),
    "someone/tiny-pipe": ("hf-cache", ModelKind.CHECKPOINT, Family.SDXL),
    "someone/lora-repo/pytorch_lora_weights": ("hf-cache", ModelKind.LORA, Family.SDXL),
}


def test_layouts_kinds_and_families(library: tuple[Catalog, ScanReport, Path]) -> None:
    catalog, report, _ = library
    found = _by_rel(catalog)
    for rel, expected in EXPECTED.items():
        r = found[rel]
        assert (r.layout, r.kind, r.family) == expected, (rel, r.info.reason)
        assert r.status is Status.OK
    assert (
        found["tiny-sd"].format is StorageFormat.DIFFUSERS
        and found["someone/tiny-pipe"].name == "someone/tiny-pipe"
    )
    assert {"evil", "evil_renamed", "evil_zip"} <= set(found)
    assert report.files == len(EXPECTED) + 3
    assert any(p.path == "/nonexistent/place/vae" for p in report.problems)
    assert not any("ESRGAN" in f for f in report.folders)  # upscalers are not models we catalogue


def test_pickles_are_never_executed(library: tuple[Catalog, ScanReport, Path]) -> None:
    catalog, _, base = library
    found = _by_rel(catalog)
    assert not (base / "CANARY").exists()
    assert found["evil"].status is Status.UNSAFE and "never opened" in found["evil"].info.reason
    assert found["evil"].kind is ModelKind.CHECKPOINT  # from its folder
    assert (
        found["evil_renamed"].status is Status.BROKEN
        and "it is a pickle" in found["evil_renamed"].info.reason
    )
    assert "zip archive" in found["evil_zip"].info.reason


def test_sidecars_and_derivatives(library: tuple[Catalog, ScanReport, Path]) -> None:
    found = _by_rel(library[0])
    dream = found["sd15/dreamshaper_8"].sidecar
    assert dream is not None and dream.preferred_weight == 0.8 and dream.negative_text == "blurry"
    assert dream.sd_version == "SD1" and dream.previews == ("dreamshaper_8.preview.png",)
    pony = found["ponyDiffusionV6XL"]
    assert pony.info.derivative == "Pony" and "Civitai baseModel" in pony.info.reason
    assert (
        pony.sidecar is not None
        and pony.sidecar.nsfw is False
        and pony.sidecar.tags == ("anime", "base model")
    )
    assert pony.trigger_words == ("score_9", "score_8_up")
    dog = found["characters/sksdog"]
    assert dog.trigger_words == ("sks dog",) and dog.info.lora.top_tags[0].count == 20  # type: ignore[union-attr]
    speed = found["sdxl_lightning_4step_lora"].info.lora.speed  # type: ignore[union-attr]
    assert speed is not None and (speed.name, speed.steps) == ("Lightning", 4)


def test_lookup_by_a1111_rules(library: tuple[Catalog, ScanReport, Path]) -> None:
    catalog = library[0]
    assert catalog.get("DreamShaper_8").rel_name == "sd15/dreamshaper_8"
    assert catalog.get("sd15/dreamshaper_8.safetensors").name == "dreamshaper_8"
    assert catalog.get("SD15\\DREAMSHAPER_8").name == "dreamshaper_8"
    assert catalog.get("characters/sksdog").family is Family.SD1
    with pytest.raises(AmbiguousModelError, match="fits 2 catalogued models") as info:
        catalog.get("sksdog")
    assert len(info.value.candidates) == 2 and "styles/sksdog" in str(info.value)
    assert catalog.lookup("sksdog", (ModelKind.CHECKPOINT,)) is None
    with pytest.raises(ModelNotFoundError, match="models scan --root"):
        catalog.get("no-such-model")
    path = _by_rel(catalog)["sdxl_vae"].path
    assert catalog.get(path).kind is ModelKind.VAE


def test_hashes_and_lookup_by_hash(library: tuple[Catalog, ScanReport, Path]) -> None:
    catalog = library[0]
    (lora,) = catalog.hash([catalog.get("characters/sksdog")])
    assert lora.hashes.sha256 and lora.hashes.addnet and lora.short_hash == lora.hashes.addnet[:12]
    assert catalog.get(lora.hashes.autov2 or "").path == lora.path
    assert catalog.get(f"sksdog [{lora.hashes.autov2}]").path == lora.path
    assert catalog.get(lora.hashes.addnet[:12]).path == lora.path
    assert catalog.get(lora.path).hashes == lora.hashes


def test_unchanged_rescan_probes_and_hashes_nothing(library: tuple[Catalog, ScanReport, Path]) -> None:
    catalog, first, _ = library
    again = catalog.scan()
    assert (again.unchanged, again.new, again.changed, again.missing) == (first.files, 0, 0, 0)
    assert again.probed == 0 and again.bytes_hashed == 0 and first.probed == first.files


def test_records_round_trip_through_json(library: tuple[Catalog, ScanReport, Path]) -> None:
    for record in library[0].find():
        assert ModelRecord.from_json(record.to_json()) == record
    sdxl_loras = library[0].find(kind=ModelKind.LORA, family=Family.SDXL)
    assert sdxl_loras and all(r.kind is ModelKind.LORA and r.family is Family.SDXL for r in sdxl_loras)
    assert [r.rel_name for r in library[0].find(text="SKS DOG")] == ["characters/sksdog"]
