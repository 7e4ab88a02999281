"""What-if planning: plans for GPUs and CPUs that are not this machine, from safetensors headers alone."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from ml_lib.diffusion.errors import RequestError
from ml_lib.diffusion.facade import ImageGenerator
from ml_lib.diffusion.planning.memory import MARGIN
from ml_lib.diffusion.planning.whatif import RAM_AVAILABLE_SHARE, hypothetical_device, parse_bytes
from ml_lib.diffusion.request import GenerationRequest
from ml_lib.diffusion.settings import Settings

from .._whatif_models import write_models

GB = 10**9


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, Path]]:
    root = tmp_path_factory.mktemp("whatif")
    settings = Settings(home=root / "home", model_roots=())
    return settings, write_models(root, settings.db_path)


@pytest.fixture
def gen(home: tuple[Settings, dict[str, Path]]) -> Iterator[ImageGenerator]:
    with ImageGenerator(home[0]) as g:
        yield g


def _plan(gen: ImageGenerator, model: Path, size: int, **hardware: object):  # type: ignore[no-untyped-def]
    request = GenerationRequest("a fox in the snow", model=str(model), width=size, height=size, seed=1)
    return gen.plan(request, hardware=hypothetical_device(**hardware))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "size", "gb", "strategy"),
    [
        ("sdxl", 1024, 4, "sequential"),
        ("sdxl", 1024, 6, "sequential"),
        ("sdxl", 1024, 8, "sequential"),
        ("sdxl", 1024, 12, "none"),
        ("sdxl", 1024, 24, "none"),
        ("sd1", 512, 4, "none"),
        ("sd1", 512, 24, "none"),
    ],
)
def test_gpus(gen: ImageGenerator, home, kind: str, size: int, gb: int, strategy: str) -> None:  # type: ignore[no-untyped-def]
    plan = _plan(gen, home[1][kind], size, kind="cuda", vram=gb * GB)
    assert (plan.device, plan.dtype) == ("cuda", "float16")
    memory = plan.memory
    assert memory is not None and memory.strategy == strategy and memory.budget_bytes == gb * GB
    assert memory.estimated_peak_bytes <= gb * GB * (1 - MARGIN)  # it fits, with the margin
    reason = plan.decision("memory").reason  # type: ignore[union-attr]
    assert f"{kind} {size}x{size} needs ~" in reason and f"{gb}.0 GB free VRAM" in reason
    assert reason.endswith(f"→ {strategy} (~{memory.estimated_peak_bytes / GB:.1f} GB)")
    assert plan.decision("device").reason == f"what-if: CUDA GPU, VRAM {gb} GB"  # type: ignore[union-attr]
    assert gen._pool is None  # nothing was loaded


def test_sdxl_needs_more_than_sd15_and_offloading_on_small_gpus(gen: ImageGenerator, home) -> None:  # type: ignore[no-untyped-def]
    xl = _plan(gen, home[1]["sdxl"], 1024, kind="cuda", vram=6 * GB).memory
    xl_big = _plan(gen, home[1]["sdxl"], 1024, kind="cuda", vram=24 * GB).memory
    sd = _plan(gen, home[1]["sd1"], 512, kind="cuda", vram=6 * GB).memory
    assert xl is not None and xl_big is not None and sd is not None
    assert xl_big.estimated_peak_bytes > 6 * GB > sd.estimated_peak_bytes  # SDXL whole does not fit 6 GB
    assert xl.estimated_peak_bytes < xl_big.estimated_peak_bytes  # offloading is what makes it fit


@pytest.mark.parametrize(
    ("gb", "strategy", "fits"),
    [
        (2, "aggressive", False),
        (3, "aggressive", False),
        (4, "none", True),
        (8, "none", True),
        (16, "none", True),
    ],
)
def test_cpus(gen: ImageGenerator, home, gb: int, strategy: str, fits: bool) -> None:  # type: ignore[no-untyped-def]
    plan = _plan(gen, home[1]["sd1"], 512, kind="cpu", ram=gb * GB)
    assert (plan.device, plan.dtype) == ("cpu", "float32")
    memory = plan.memory
    budget = int(gb * GB * RAM_AVAILABLE_SHARE)
    assert memory is not None and memory.budget_bytes == budget
    reason = plan.decision("memory").reason  # type: ignore[union-attr]
    assert f"{budget / GB:.1f} GB RAM available" in reason
    # 4 GB and up run SD1.5 512² as is (the fp16 file kept in fp16, each component's pages handed back after
    # its phase); below, it does not fit whatever the strategy (the 512² VAE decode with the fp8 UNet held
    # beside it), which the plan says before anything loads, with the leanest strategy
    assert memory.strategy == strategy
    if fits:
        assert memory.estimated_peak_bytes <= budget * (1 - MARGIN) and "may not fit" not in reason
    else:
        assert "may not fit" in reason


def test_sdxl_on_cpus(gen: ImageGenerator, home) -> None:  # type: ignore[no-untyped-def]
    big = _plan(gen, home[1]["sdxl"], 1024, kind="cpu", ram=16 * GB).memory
    small = _plan(gen, home[1]["sdxl"], 1024, kind="cpu", ram=8 * GB)
    assert big is not None and big.strategy == "none"  # fp16 storage, the UNet's pages alone while denoising
    assert small.memory is not None and small.memory.strategy in ("balanced", "sequential", "aggressive")
    assert small.memory.estimated_peak_bytes < big.estimated_peak_bytes
    assert "may not fit" not in small.decision("memory").reason  # type: ignore[union-attr]


def test_mps_holds_the_plan_against_unified_memory(gen: ImageGenerator, home) -> None:  # type: ignore[no-untyped-def]
    plan = _plan(gen, home[1]["sd1"], 512, kind="mps", ram=16 * GB)
    assert (plan.device, plan.dtype) == ("mps", "float16")
    assert plan.memory is not None and plan.memory.budget_bytes == int(16 * GB * RAM_AVAILABLE_SHARE)


def test_a_what_if_plan_is_refused_by_execute_in_one_line(gen: ImageGenerator, home) -> None:  # type: ignore[no-untyped-def]
    from ml_lib.diffusion.errors import DeviceUnavailableError

    plan = _plan(gen, home[1]["sd1"], 512, kind="cuda", vram=6 * GB)
    with pytest.raises(DeviceUnavailableError, match="does not have") as info:
        gen.execute(plan, save=False)
    assert "\n" not in str(info.value) and gen._pool is None


def test_what_if_planning_does_not_even_import_torch(home) -> None:  # type: ignore[no-untyped-def]
    settings, models = home
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from ml_lib.diffusion.facade import ImageGenerator
        from ml_lib.diffusion.planning.whatif import hypothetical_device
        from ml_lib.diffusion.settings import Settings
        with ImageGenerator(Settings(home=Path({str(settings.home)!r}), model_roots=())) as g:
            plan = g.plan("a fox", model={str(models["sdxl"])!r}, width=1024, height=1024,
                          hardware=hypothetical_device("cuda", vram=6 * 10**9))
        print(plan.memory.strategy, "torch" in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.split() == ["sequential", "False"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("6GB", 6 * GB), ("6", 6 * GB), ("6 gb", 6 * GB), ("8192MB", 8192 * 10**6), ("16GiB", 16 * 2**30)],
)
def test_parse_bytes(text: str, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["6XB", "lots", "-1GB", "12MB"])
def test_parse_bytes_refuses(text: str) -> None:
    with pytest.raises(RequestError, match="--vram"):
        parse_bytes(text)


def test_impossible_hardware_is_refused() -> None:
    with pytest.raises(RequestError, match="give --ram instead"):
        hypothetical_device("cpu", vram=6 * GB)
    with pytest.raises(RequestError, match="add --vram"):
        hypothetical_device("cuda")
    with pytest.raises(RequestError, match="not one of"):
        hypothetical_device("tpu", ram=8 * GB)
