"""Textual-inversion embeddings named in prompts, from the catalog, loaded and unloaded exactly."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from ml_lib.diffusion import ImageGenerator, Settings
from ml_lib.diffusion.engine.embeddings import apply_embeddings
from ml_lib.diffusion.plan import EmbeddingUse
from ml_lib.diffusion.testing.tiny import TinyModelFiles, tiny_sd1_components

FAST = dict(width=64, height=64, steps=2, cfg_scale=5.0, sampler="Euler", seed=2, save=False)


@pytest.fixture(scope="module")
def embedding_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("embeddings")
    gen = torch.Generator().manual_seed(0)
    save_file({"emb_params": torch.randn(2, 32, generator=gen)}, str(root / "tinyemb.safetensors"))
    save_file(
        {"clip_l": torch.randn(2, 32, generator=gen), "clip_g": torch.randn(2, 64, generator=gen)},
        str(root / "xlemb.safetensors"),
    )
    return root


def px(result) -> np.ndarray:
    return np.asarray(result.images[0], dtype=np.int16)


def test_named_embedding_changes_the_image_and_bare_equals_explicit(
    tiny_sd1: TinyModelFiles, embedding_root: Path, tmp_path: Path
) -> None:
    model = str(tiny_sd1.single_file)
    with ImageGenerator(Settings(home=tmp_path / "a"), device="cpu") as plain:
        literal = px(plain.generate("a photo of tinyemb", model=model, **FAST))
    settings = Settings(home=tmp_path / "b", model_roots=(embedding_root,))
    with ImageGenerator(settings, device="cpu") as gen:
        gen.catalog().scan()
        result = gen.generate(
            "a photo of tinyemb", model=model, **{**FAST, "save": True}, output_dir=str(tmp_path)
        )
        (use,) = result.plan.embeddings
        assert use.name == "tinyemb" and Path(use.path) == embedding_root / "tinyemb.safetensors"
        assert np.abs(px(result) - literal).mean() > 0.5
        explicit = px(gen.generate("a photo of embedding:tinyemb", model=model, **FAST))
        assert np.array_equal(explicit, px(result))
        info = gen.info(result.paths[0])
        sha = hashlib.sha256((embedding_root / "tinyemb.safetensors").read_bytes()).hexdigest()
        assert info.parsed is not None and info.parsed.get("TI hashes") == f"tinyemb: {sha[:12]}"
        assert gen.plan("a photo of a cat", model=model).embeddings == ()


def test_sdxl_embedding_loads_into_both_encoders(
    tiny_sdxl: TinyModelFiles, embedding_root: Path, tmp_path: Path
):
    model = str(tiny_sdxl.single_file)
    with ImageGenerator(Settings(home=tmp_path / "a"), device="cpu") as plain:
        literal = px(plain.generate("a xlemb star", model=model, **FAST))
    with ImageGenerator(Settings(home=tmp_path / "b", model_roots=(embedding_root,)), device="cpu") as gen:
        gen.catalog().scan()
        result = gen.generate("a xlemb star", model=model, **FAST)
    assert [e.name for e in result.plan.embeddings] == ["xlemb"]
    assert np.abs(px(result) - literal).mean() > 0.5


def test_unused_embeddings_are_unloaded(embedding_root: Path) -> None:
    pipe = tiny_sd1_components()
    size, rows = len(pipe.tokenizer), pipe.text_encoder.get_input_embeddings().weight.shape[0]
    use = EmbeddingUse("tinyemb", str(embedding_root / "tinyemb.safetensors"))
    loaded: dict[str, str] = {}
    apply_embeddings(pipe, loaded, (use,))
    assert len(pipe.tokenizer) == size + 2 and loaded == {"tinyemb": use.path}
    apply_embeddings(pipe, loaded, ())
    assert loaded == {}
    assert len(pipe.tokenizer) == size
    assert pipe.text_encoder.get_input_embeddings().weight.shape[0] == rows
