"""Per-component parameter counts read from headers match the loaded tiny pipelines exactly."""

from __future__ import annotations

import pytest

from ml_lib.diffusion.resolve.checkpoint import component_sizes, resolve_model
from ml_lib.diffusion.testing.tiny import _BUILDERS, TinyModelFiles


def _counts(kind: str) -> tuple[int, int, int]:
    pipe = _BUILDERS[kind](0)
    encoders = [m for m in (pipe.text_encoder, getattr(pipe, "text_encoder_2", None)) if m is not None]
    params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    return params(pipe.unet), sum(map(params, encoders)), params(pipe.vae)


@pytest.mark.parametrize("kind", ["sd1", "sdxl"])
@pytest.mark.parametrize("form", ["single_file", "diffusers_dir"])
def test_component_sizes_match_the_models(kind: str, form: str, request: pytest.FixtureRequest) -> None:
    files: TinyModelFiles = request.getfixturevalue(f"tiny_{kind}")
    path = getattr(files, form)
    sizes = component_sizes(resolve_model(str(path)))
    assert (sizes.unet, sizes.text_encoder, sizes.vae) == _counts(kind)
    assert sizes.file_bytes is not None and sizes.file_bytes > 0


def test_detect_device_measures_the_ram() -> None:
    import psutil

    from ml_lib.diffusion.engine.device import detect_device

    device = detect_device("cpu")
    total = psutil.virtual_memory().total
    assert device.ram_total == total and device.ram_available is not None
    assert 0 < device.ram_available <= total and device.memory_budget == device.ram_available
    assert device.vram_total is None and device.compute_capability is None
