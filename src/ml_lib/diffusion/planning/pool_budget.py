"""The model pool's byte budgets and its eviction choice (pure: sizes, arithmetic, an LRU order).

A budget bounds the bytes the pool keeps loaded in RAM and in VRAM (weights of the cached models, each
tensor counted once however many pipelines share it). Defaults, from the device:

- RAM: half the machine's RAM (the other half is for the generation's activations, the OS and the rest);
- VRAM (CUDA): 75% of the device's memory (activations and the CUDA context need the rest).

``ImageGenerator(pool_budget=...)`` or ``$ML_DIFFUSION_POOL_BUDGET`` override them: a size ("8GB",
"512MiB", a byte count) bounds the memory where models compute (VRAM on CUDA, RAM elsewhere);
"ram=16GB,vram=6GB" sets both. Before a load, the pool reserves the model's bytes as the planning estimate
gives them (:func:`expected_bytes`) and evicts the least recently used unpinned models until the new one
fits; a model larger than the whole budget still loads, alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..catalog.families import Family
from ..errors import ConfigError
from .device import DeviceInfo
from .memory import Strategy, Workload, estimate

__all__ = [
    "PoolBudget",
    "Resident",
    "choose_victims",
    "default_budget",
    "expected_bytes",
    "parse_budget",
    "parse_size",
]

GB = 10**9
RAM_SHARE = 0.5
VRAM_SHARE = 0.75

_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PoolBudget:
    """Bytes the pool may hold in RAM and in VRAM; None: unbounded there."""

    ram: int | None = None
    vram: int | None = None

    def describe(self) -> str:
        """ "RAM 12.0 GB, VRAM 6.0 GB" (or "unbounded")."""
        parts = [f"{n} {v / GB:.1f} GB" for n, v in (("RAM", self.ram), ("VRAM", self.vram)) if v is not None]
        return ", ".join(parts) or "unbounded"


@dataclass(frozen=True, slots=True)
class Resident:
    """One pooled model as the eviction choice sees it, least recently used first in a sequence."""

    key: object
    ram: int
    vram: int
    pinned: bool


def parse_size(text: str | int, *, what: str = "pool budget") -> int:
    """Bytes from ``8GB``, ``512MiB``, ``1.5g`` or a byte count; ConfigError naming the forms otherwise."""
    if isinstance(text, bool):
        raise ConfigError(f"{what} {text!r} is not a size; give bytes or a size like 8GB or 512MiB.")
    if isinstance(text, int):
        value = float(text)
        unit = ""
    else:
        match = _SIZE.match(text)
        if match is None or match.group(2).lower() not in _UNITS:
            raise ConfigError(
                f"{what} {text!r} is not a size; give bytes or a size like 8GB, 512MiB or 1.5GiB."
            )
        value, unit = float(match.group(1)), match.group(2).lower()
    size = int(value * _UNITS[unit])
    if size <= 0:
        raise ConfigError(f"{what} {text!r} must be more than 0 bytes.")
    return size


def parse_budget(value: str | int | PoolBudget | None, device_kind: str = "cpu") -> PoolBudget | None:
    """A budget from a size (for the memory where models compute: VRAM on CUDA, RAM elsewhere), from
    ``"ram=16GB,vram=6GB"`` or a PoolBudget as is; None stays None (the device's default applies)."""
    if value is None or isinstance(value, PoolBudget):
        return value
    if isinstance(value, str) and "=" in value:
        sizes: dict[str, int] = {}
        for part in (p.strip() for p in value.split(",") if p.strip()):
            name, _, text = part.partition("=")
            name = name.strip().lower()
            if name not in ("ram", "vram") or name in sizes:
                raise ConfigError(
                    f"pool budget {value!r}: {name!r} is not ram or vram (or is given twice); "
                    "write e.g. ram=16GB,vram=6GB."
                )
            sizes[name] = parse_size(text, what=f"pool budget {name}")
        return PoolBudget(sizes.get("ram"), sizes.get("vram"))
    size = parse_size(value)
    return PoolBudget(vram=size) if device_kind == "cuda" else PoolBudget(ram=size)


def default_budget(device: DeviceInfo, override: PoolBudget | None = None) -> PoolBudget:
    """The device's default budget (module docstring), with ``override``'s bounds taking precedence."""
    ram = int(device.ram_total * RAM_SHARE) if device.ram_total else None
    vram = int(device.vram_total * VRAM_SHARE) if device.vram_total else None
    if override is None:
        return PoolBudget(ram, vram)
    return PoolBudget(
        override.ram if override.ram is not None else ram,
        override.vram if override.vram is not None else vram,
    )


def expected_bytes(
    family: str,
    params: tuple[int, int, int],
    *,
    dtype: str,
    device: str,
    strategy: str,
) -> tuple[int, int]:
    """(RAM, VRAM) bytes a model's weights will hold once loaded, from the planning estimate: ``params`` is
    (UNet, text encoders, VAE) parameter counts. On a CPU everything is in RAM (the UNet in fp8 with any
    strategy but none); on an accelerator ``none`` keeps the weights in VRAM and the offloading strategies
    keep them in RAM with what the estimate calls resident on the device."""
    try:
        fam = Family(family)
    except ValueError:
        fam = Family.UNKNOWN
    unet, text, vae = params
    work = Workload(fam, unet, text, vae, 64, 64, dtype=dtype, device=device)
    try:
        chosen = Strategy(strategy)
    except ValueError:
        chosen = Strategy.NONE
    e = estimate(work, chosen)
    if device == "cpu":
        return e.resident_weight_bytes, 0
    if chosen is Strategy.NONE:
        return 0, e.weight_bytes
    return e.weight_bytes, e.resident_weight_bytes


def _over(held: tuple[int, int], budget: PoolBudget) -> bool:
    ram, vram = held
    return (budget.ram is not None and ram > budget.ram) or (budget.vram is not None and vram > budget.vram)


def choose_victims(
    residents: Sequence[Resident], incoming: tuple[int, int], budget: PoolBudget
) -> tuple[list[object], bool]:
    """Keys to evict, least recently used first, so that the residents left plus ``incoming`` (RAM, VRAM)
    fit ``budget``; pinned residents are never chosen. Also whether the result fits: False when ``incoming``
    alone exceeds the budget (it loads alone) or pinned models leave too little room."""
    ram = sum(r.ram for r in residents) + incoming[0]
    vram = sum(r.vram for r in residents) + incoming[1]
    victims: list[object] = []
    for r in residents:
        if not _over((ram, vram), budget):
            break
        if r.pinned:
            continue
        victims.append(r.key)
        ram, vram = ram - r.ram, vram - r.vram
    return victims, not _over((ram, vram), budget)
