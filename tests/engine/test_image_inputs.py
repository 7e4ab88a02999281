"""img2img, inpaint, ControlNet and IP-Adapter through the engine, on tiny pipelines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ml_lib.diffusion import ImageGenerator, Settings
from ml_lib.diffusion.errors import AmbiguousModelError, RequestError
from ml_lib.diffusion.request import ControlRequest, IPAdapterRequest
from ml_lib.diffusion.testing.tiny import TinyModelFiles, tiny_sd1_components
from ml_lib.diffusion.testing.tiny_adapters import write_tiny_controlnet, write_tiny_ip_adapter

FAST = dict(width=64, height=64, steps=5, cfg_scale=5.0, sampler="Euler", seed=4, save=False)


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> ImageGenerator:
    with ImageGenerator(Settings(home=tmp_path_factory.mktemp("home")), device="cpu") as g:
        yield g


@pytest.fixture(scope="module")
def adapters(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapters")
    pipe = tiny_sd1_components()
    return {
        "cn_a": write_tiny_controlnet(pipe, root / "cn_a", seed=1),
        "cn_b": write_tiny_controlnet(pipe, root / "cn_b", seed=2),
        "ip": write_tiny_ip_adapter(pipe, root / "ip", seed=3),
        "ip_plus": write_tiny_ip_adapter(pipe, root / "ip_plus", seed=4, plus=True),
    }


def scene() -> Image.Image:
    image = Image.new("RGB", (64, 64), (30, 60, 200))
    ImageDraw.Draw(image).ellipse((16, 16, 48, 48), fill=(230, 40, 40))
    return image


def center_mask() -> Image.Image:
    mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(mask).rectangle((20, 20, 43, 43), fill=255)
    return mask


def px(result) -> np.ndarray:
    return np.asarray(result.images[0], dtype=np.int16)


def test_img2img_follows_strength_and_reuses_the_pipeline(gen, tiny_sd1: TinyModelFiles) -> None:
    model = str(tiny_sd1.single_file)
    txt = gen.generate("a ball", model=model, **FAST)
    init = np.asarray(scene(), dtype=np.int16)
    low = gen.generate("a ball", model=model, init_image=scene(), strength=0.1, **FAST)  # 1 step of 5
    high = gen.generate("a ball", model=model, init_image=scene(), strength=0.9, **FAST)
    assert low.plan.init is not None and low.plan.init.strength == 0.1
    assert np.abs(px(low) - init).mean() < np.abs(px(high) - init).mean()
    assert np.abs(px(low) - init).mean() < np.abs(px(txt) - init).mean()
    again = gen.generate("a ball", model=model, init_image=scene(), strength=0.1, **FAST)
    assert np.array_equal(px(again), px(low))
    loaded = gen._pipelines().get(txt.plan.model, dtype="float32", device="cpu")
    base = loaded.pipe
    views = [v for k, v in loaded.views.items() if k[0] == "img2img"]
    assert len(views) == 1 and views[0].unet is base.unet and views[0].vae is base.vae
    assert not any(k.startswith("_ml_") for k in vars(base))  # the engine hangs nothing on diffusers objects


def test_img2img_size_defaults_to_the_init_image(gen, tiny_sd1: TinyModelFiles) -> None:
    wide = scene().resize((100, 60))
    plan = gen.plan("x", model=str(tiny_sd1.single_file), init_image=wide, steps=2)
    assert (plan.width, plan.height) == (96, 56)
    decision = plan.decision("width")
    assert decision is not None and "init image" in decision.reason


@pytest.mark.parametrize("only_masked", [False, True])
def test_inpaint_keeps_unmasked_pixels(gen, tiny_sd1: TinyModelFiles, only_masked: bool) -> None:
    result = gen.generate(
        "a ball", model=str(tiny_sd1.single_file), init_image=scene(), mask=center_mask(), strength=0.9,
        mask_blur=0, inpaint_full_res=only_masked, inpaint_padding=8, **FAST,
    )  # fmt: skip
    out, init = px(result), np.asarray(scene(), dtype=np.int16)
    keep = np.asarray(center_mask()) == 0
    assert np.array_equal(out[keep], init[keep])
    assert np.abs(out[~keep] - init[~keep]).mean() > 2


def test_mask_blur_softens_only_near_the_edge(gen, tiny_sd1: TinyModelFiles) -> None:
    result = gen.generate(
        "a ball", model=str(tiny_sd1.single_file), init_image=scene(), mask=center_mask(), strength=0.9,
        mask_blur=4, **FAST,
    )  # fmt: skip
    out, init = px(result), np.asarray(scene(), dtype=np.int16)
    far = np.ones((64, 64), bool)
    far[8:56, 8:56] = False  # more than 12 px from the masked square
    assert np.array_equal(out[far], init[far])


def test_mask_without_init_and_too_few_steps_are_rejected(gen, tiny_sd1: TinyModelFiles) -> None:
    with pytest.raises(RequestError, match="needs an init image"):
        gen.plan("x", model=str(tiny_sd1.single_file), mask=center_mask())
    # A1111 runs int(steps x min(strength, 0.999)) + 1 steps: even 3 steps at 0.2 run one
    plan = gen.plan("x", model=str(tiny_sd1.single_file), init_image=scene(), steps=3, strength=0.2)
    assert plan.init is not None and plan.init.steps_run(plan.steps) == 1


def test_controlnet_scale_zero_is_base_and_units_combine(gen, tiny_sd1: TinyModelFiles, adapters) -> None:
    model = str(tiny_sd1.single_file)
    base = px(gen.generate("a ball", model=model, **FAST))

    def with_units(*units: ControlRequest) -> np.ndarray:
        return px(gen.generate("a ball", model=model, controls=units, **FAST))

    a0 = with_units(ControlRequest(str(adapters["cn_a"]), scene(), "none", 0.0))
    a = with_units(ControlRequest(str(adapters["cn_a"]), scene(), "none", 1.0))
    b = with_units(ControlRequest(str(adapters["cn_b"]), scene(), "canny", 1.0))
    both = with_units(
        ControlRequest(str(adapters["cn_a"]), scene(), "none", 1.0),
        ControlRequest(str(adapters["cn_b"]), scene(), "canny", 1.0),
    )
    assert np.array_equal(a0, base)
    assert np.abs(a - base).mean() > 0.5
    assert np.abs(both - a).mean() > 0.2 and np.abs(both - b).mean() > 0.2
    assert np.array_equal(px(gen.generate("a ball", model=model, **FAST)), base)


def test_controlnet_recommended_scale_is_a_decision(gen, tiny_sd1: TinyModelFiles, adapters) -> None:
    plan = gen.plan(
        "x",
        model=str(tiny_sd1.single_file),
        controls=(ControlRequest(str(adapters["cn_a"]), scene(), "tile"),),
    )
    decision = plan.decision("controls[0].scale")
    assert decision is not None and "tile" in decision.reason and plan.controls[0].scale == decision.value


def test_ip_adapter_scale_and_unload(gen, tiny_sd1: TinyModelFiles, adapters) -> None:
    model = str(tiny_sd1.single_file)
    base = px(gen.generate("a ball", model=model, **FAST))
    red = Image.new("RGB", (48, 48), (255, 0, 0))

    def with_ip(scale: float, image: Image.Image = red) -> np.ndarray:
        unit = IPAdapterRequest(str(adapters["ip"]), image, "ip-adapter_tiny.safetensors", scale)
        return px(gen.generate("a ball", model=model, ip_adapters=(unit,), **FAST))

    assert np.array_equal(with_ip(0.0), base)
    strong = with_ip(1.0)
    assert np.abs(strong - base).mean() > 0.5
    assert np.abs(with_ip(1.0, Image.new("RGB", (48, 48), (0, 0, 255))) - strong).mean() > 0.1
    loaded = gen._pipelines().get(gen.plan("x", model=model).model, dtype="float32", device="cpu")
    assert len(loaded.ip_adapters.embeds) == 2  # one per distinct image, reused across calls
    assert np.array_equal(px(gen.generate("a ball", model=model, **FAST)), base)


def test_ip_adapter_per_block_scales(gen, tiny_sd1: TinyModelFiles, adapters) -> None:
    model = str(tiny_sd1.single_file)
    red = Image.new("RGB", (48, 48), (255, 0, 0))

    def run(scale: float = 1.0, blocks=None) -> np.ndarray:  # type: ignore[no-untyped-def]
        unit = IPAdapterRequest(str(adapters["ip"]), red, "ip-adapter_tiny.safetensors", scale, blocks=blocks)
        return px(gen.generate("a ball", model=model, ip_adapters=(unit,), **FAST))

    base = px(gen.generate("a ball", model=model, **FAST))
    full = run(1.0)
    up_only = run(blocks={"up": {"block_1": 1.0}})  # the tiny UNet's cross-attention up block
    assert np.array_equal(run(blocks={"up": {"block_1": 0.0}}), base)
    assert np.abs(up_only - base).mean() > 0.1 and np.abs(up_only - full).mean() > 0.1
    plan = gen.plan(
        "x",
        model=model,
        ip_adapters=(
            IPAdapterRequest(str(adapters["ip"]), red, "ip-adapter_tiny.safetensors", blocks={"mid": 0.5}),
        ),
    )
    assert plan.ip_adapters[0].scale_config() == {"mid": 0.5}


def test_adapters_by_catalog_name(tiny_sd1: TinyModelFiles, adapters, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, model_roots=(adapters["ip"].parent,))
    red = Image.new("RGB", (48, 48), (255, 0, 0))
    with ImageGenerator(settings, device="cpu") as named:
        named.catalog().scan()
        bare = IPAdapterRequest("ip-adapter_tiny", red, "ip-adapter_tiny.safetensors", 1.0)
        with pytest.raises(AmbiguousModelError, match="ip_plus/models/ip-adapter_tiny"):
            named.plan("a ball", model=str(tiny_sd1.single_file), ip_adapters=(bare,))  # basic and Plus
        unit = IPAdapterRequest("ip/models/ip-adapter_tiny", red, "ip-adapter_tiny.safetensors", 1.0)
        result = named.generate("a ball", model=str(tiny_sd1.single_file), ip_adapters=(unit,), **FAST)
    use = result.plan.ip_adapters[0]  # the catalog's weights file, as diffusers loads it
    assert (Path(use.model), use.subfolder, use.weight_name) == (
        adapters["ip"] / "models",
        "",
        "ip-adapter_tiny.safetensors",
    )
    with ImageGenerator(Settings(home=tmp_path / "other"), device="cpu") as by_path:
        unit = IPAdapterRequest(str(adapters["ip"]), red, "ip-adapter_tiny.safetensors", 1.0)
        same = by_path.generate("a ball", model=str(tiny_sd1.single_file), ip_adapters=(unit,), **FAST)
    assert np.array_equal(px(result), px(same))


def test_sdxl_controlnet_and_ip_adapter(tiny_sdxl: TinyModelFiles, tmp_path: Path) -> None:
    from ml_lib.diffusion.testing.tiny import tiny_sdxl_components

    pipe = tiny_sdxl_components()
    cn = write_tiny_controlnet(pipe, tmp_path / "cn_xl", seed=5)
    ip = write_tiny_ip_adapter(pipe, tmp_path / "ip_xl", seed=6)
    model = str(tiny_sdxl.single_file)
    with ImageGenerator(Settings(home=tmp_path / "home"), device="cpu") as g:
        base = px(g.generate("a ball", model=model, **FAST))
        controlled = px(
            g.generate(
                "a ball", model=model, controls=(ControlRequest(str(cn), scene(), "canny", 1.0),), **FAST
            )
        )
        unit = IPAdapterRequest(
            str(ip), Image.new("RGB", (48, 48), (0, 255, 0)), "ip-adapter_tiny.safetensors", 1.0
        )
        adapted = px(g.generate("a ball", model=model, ip_adapters=(unit,), **FAST))
        zero = IPAdapterRequest(
            str(ip), Image.new("RGB", (48, 48), (0, 255, 0)), "ip-adapter_tiny.safetensors", 0.0
        )
        assert np.array_equal(px(g.generate("a ball", model=model, ip_adapters=(zero,), **FAST)), base)
    assert np.abs(controlled - base).mean() > 0.1 and np.abs(adapted - base).mean() > 0.1


def test_ip_adapter_plus_and_two_adapters_at_once(gen, tiny_sd1: TinyModelFiles, adapters) -> None:
    model = str(tiny_sd1.single_file)
    red, blue = Image.new("RGB", (48, 48), (255, 0, 0)), Image.new("RGB", (48, 48), (0, 0, 255))
    basic = IPAdapterRequest(str(adapters["ip"]), red, "ip-adapter_tiny.safetensors", 1.0)
    plus = IPAdapterRequest(str(adapters["ip_plus"]), blue, "ip-adapter_tiny.safetensors", 1.0)
    base = px(gen.generate("a ball", model=model, **FAST))
    only_basic = px(gen.generate("a ball", model=model, ip_adapters=(basic,), **FAST))
    only_plus = px(gen.generate("a ball", model=model, ip_adapters=(plus,), **FAST))
    both = px(gen.generate("a ball", model=model, ip_adapters=(basic, plus), **FAST))
    assert np.abs(only_plus - base).mean() > 0.1
    assert np.abs(both - only_basic).mean() > 0.1 and np.abs(both - only_plus).mean() > 0.1
