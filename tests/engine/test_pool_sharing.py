"""One checkpoint's txt2img, img2img, inpaint and ControlNet pipelines share its modules in the pool (their
bytes counted once); ImageGenerator reuses the pooled model across modes and reports the pool's stats."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from ml_lib.diffusion.engine.pool import PipelinePool
from ml_lib.diffusion.engine.pool_bytes import held_bytes
from ml_lib.diffusion.engine.variants import pipeline_view
from ml_lib.diffusion.facade import ImageGenerator
from ml_lib.diffusion.resolve.checkpoint import resolve_model
from ml_lib.diffusion.settings import Settings
from ml_lib.diffusion.testing.tiny import TinyModelFiles
from ml_lib.diffusion.testing.tiny_adapters import write_tiny_controlnet

FAST = dict(width=64, height=64, steps=2, seed=3, memory="none", save=False)


def test_views_and_controlnets_are_counted_once(tiny_sd1: TinyModelFiles, tmp_path: Path) -> None:
    from diffusers import ControlNetModel

    pool = PipelinePool()
    model = resolve_model(str(tiny_sd1.diffusers_dir))
    loaded = pool.acquire(model, dtype="float32", device="cpu")
    base = pool.stats().ram_bytes
    assert base == held_bytes([loaded.pipe])[0] > 0
    views = [pipeline_view(loaded, mode) for mode in ("img2img", "inpaint")]
    assert all(v.unet is loaded.pipe.unet for v in views)
    net = ControlNetModel.from_pretrained(write_tiny_controlnet(loaded.pipe, tmp_path / "cn"))
    loaded.controlnets["cn"] = net
    with_net = [pipeline_view(loaded, mode, ("cn",), (net,)) for mode in ("txt2img", "img2img", "inpaint")]
    pool.release(loaded)
    net_bytes = held_bytes([net])[0]
    assert pool.stats().ram_bytes == base + net_bytes  # 3 modes x (base + net) held once
    naive = sum(held_bytes([v])[0] for v in (loaded.pipe, *views, *with_net))
    assert naive > 5 * base  # what counting each pipeline separately would have said


@pytest.fixture
def gen(tmp_path: Path) -> ImageGenerator:
    return ImageGenerator(Settings(home=tmp_path, model_roots=()), device="cpu", pool_budget="ram=2GB")


def test_the_generator_reuses_one_load_across_modes(gen: ImageGenerator, tiny_sd1: TinyModelFiles) -> None:
    model = str(tiny_sd1.diffusers_dir)
    with gen:
        gen.generate("a red ball", model=model, **FAST)
        after_txt = gen.pool_stats()
        scene = Image.new("RGB", (64, 64), (200, 30, 30))
        gen.generate("a red ball", model=model, init_image=scene, strength=0.5, **FAST)
        mask = Image.new("L", (64, 64), 0)
        mask.paste(255, (16, 16, 48, 48))
        gen.generate("a red ball", model=model, init_image=scene, mask=mask, **FAST)
        s = gen.pool_stats()
        assert (s.loads, s.misses, s.hits, s.models, s.pinned) == (1, 1, 2, 1, 0)
        assert s.ram_bytes == after_txt.ram_bytes > 0 and s.ram_budget == 2 * 10**9


def test_a_small_budget_keeps_one_model(
    tmp_path: Path, tiny_sd1: TinyModelFiles, tiny_sd2: TinyModelFiles
) -> None:
    with ImageGenerator(Settings(home=tmp_path, model_roots=()), device="cpu") as probe:
        probe.generate("a ball", model=str(tiny_sd1.diffusers_dir), **FAST)
        size = probe.pool_stats().ram_bytes
    budget = int(size * 1.5)  # room for one tiny model, not two
    with ImageGenerator(Settings(home=tmp_path, model_roots=()), device="cpu", pool_budget=budget) as g:
        for tiny in (tiny_sd1, tiny_sd2, tiny_sd1):
            g.generate("a ball", model=str(tiny.diffusers_dir), **FAST)
        s = g.pool_stats()
        assert (s.loads, s.evictions, s.models) == (3, 2, 1) and s.ram_bytes <= budget
