"""The demo family: recognised from configs, headers and kohya metadata; its own profile; only a fallback."""

from __future__ import annotations

from pathlib import Path

from ml_lib.diffusion.catalog.builtins import builtin_dirs, builtin_root
from ml_lib.diffusion.catalog.families import Family, PredictionType
from ml_lib.diffusion.catalog.header import read_header
from ml_lib.diffusion.catalog.kinds import identify_header
from ml_lib.diffusion.catalog.probe import detect_family, probe_diffusers_folder
from ml_lib.diffusion.catalog.records import ModelKind
from ml_lib.diffusion.demo.assets import LORA_FILE, demo_folder
from ml_lib.diffusion.planning.models import DEMO_REASON, choose_checkpoint
from ml_lib.diffusion.planning.parameters import Bucket, size_buckets
from ml_lib.diffusion.planning.profiles import profile_for
from ml_lib.diffusion.prompt.analyzer import analyze_prompt
from ml_lib.diffusion.testing import fakes
from ml_lib.diffusion.testing.records import checkpoint_record


def test_shipped_folder_lora_and_builtin_dirs_are_demo() -> None:
    guess = probe_diffusers_folder(demo_folder())
    assert (guess.family, guess.standard) == (Family.DEMO, True)
    lora = identify_header(read_header(demo_folder() / LORA_FILE))
    assert (lora.kind, lora.family) == (ModelKind.LORA, Family.DEMO)
    kinds = {d.kind for d in builtin_dirs()}
    assert kinds == {ModelKind.CHECKPOINT, ModelKind.LORA, ModelKind.CONTROLNET}
    assert all(d.root == builtin_root() and d.layout == "builtin" for d in builtin_dirs())


def test_single_file_of_demo_shapes(tmp_path: Path) -> None:
    keys = {
        "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": ("F16", (653, 128)),
        "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": ("F16", (64, 128)),
    }
    path = fakes.write_fake_safetensors(tmp_path / "demo.safetensors", keys)
    assert detect_family(read_header(path)).family is Family.DEMO
    sd1 = dict(keys)
    sd1["model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"] = ("F16", (320, 768))
    other = fakes.write_fake_safetensors(tmp_path / "sd1.safetensors", sd1)
    assert detect_family(read_header(other)).family is Family.SD1


def test_profile_is_64_square_whatever_the_aspect() -> None:
    profile = profile_for(Family.DEMO, PredictionType.EPSILON)
    assert (profile.width, profile.height, profile.steps, profile.cfg_scale, profile.sampler) == (
        64, 64, 20, 4.0, "DDIM",
    )  # fmt: skip
    assert size_buckets(Family.DEMO, 64) == (Bucket(64, 64),)


def test_demo_is_chosen_only_when_nothing_else_fits() -> None:
    analysis = analyze_prompt("a red circle on the left")
    demo = checkpoint_record("demo", Family.DEMO)
    alone = choose_checkpoint(analysis, [demo])
    assert alone is not None and alone.record is demo and alone.reason == DEMO_REASON
    real = checkpoint_record("anime_mix", Family.SD1)  # even a poor fit for the prompt beats the demo
    chosen = choose_checkpoint(analyze_prompt("a photo of a red circle"), [demo, real])
    assert chosen is not None and chosen.record is real


def test_builtins_scan_alone_and_pipeline_size_counts_its_components(tmp_path: Path) -> None:
    from ml_lib.diffusion.catalog.catalog import Catalog
    from ml_lib.diffusion.db import connect

    catalog = Catalog(connect(tmp_path / "db.sqlite3"))
    report = catalog.scan()
    assert report.files == 3 and report.roots == (str(builtin_root()),)
    assert catalog.scan().unchanged == 3
    demo = catalog.get("demo")
    parts = ("unet", "vae", "text_encoder")
    expected = sum(f.stat().st_size for p in parts for f in (demo_folder() / p).glob("*.safetensors"))
    assert demo.weights_bytes == expected  # the LoRA and ControlNet kept inside the folder are not counted


def test_builtins_of_an_earlier_installation_become_missing(tmp_path: Path) -> None:
    import dataclasses

    from ml_lib.diffusion.catalog.catalog import Catalog
    from ml_lib.diffusion.catalog.records import Status
    from ml_lib.diffusion.db import connect

    catalog = Catalog(connect(tmp_path / "db.sqlite3"))
    catalog.scan()
    old = dataclasses.replace(catalog.get("demo"), path="/old/venv/assets/demo", root="/old/venv/assets/demo")
    catalog.store.put([old])
    report = catalog.scan()
    assert report.missing == 1 and catalog.store.get("/old/venv/assets/demo").status is Status.MISSING
    assert catalog.get("demo").path == str(builtin_root())
