"""Memory estimate per plan and strategy (pure: counts and arithmetic, nothing loaded).

Formula (bytes, on the device that computes; ``b`` is the compute dtype's size, 4 for fp32, 2 for fp16)::

    weights    = (P_unet + P_te + P_vae + units) * b            P_* from the safetensors headers
    units      = n_controlnet * 0.42 * P_unet + n_ip_adapter * 632e6    (SD1.5 ControlNet; ViT-H encoder)
    latent_px  = (width / 8) * (height / 8)
    unet_act   = WORK + A[family] * latent_px * batch * (2 with CFG) * b * (1 + 0.5 * n_controlnet)
    decode     = WORK + D[family] * pixels * b * (batch, or 1 with VAE slicing); tiled: one tile's pixels
                 (512², for every family: diffusers' default tile is the VAE's native size)
    run        = base + resident weights + max(unet_act, decode)
    load       = base + weights + file bytes (CPU only: every weight at compute precision while a single
                 file's state dict is held for conversion; 0 on a GPU, where loading happens in RAM)
    peak       = max(load, run)

A hires checkpoint (a second model for the hires pass, ``P_second`` its parameters) is held beside the
first, both pinned for the whole run: ``P_second * b`` joins the weights and the resident part (on a GPU
under the offloading strategies it is offloaded like the first model's, one component at a time); not
calibrated, and conservative with memory-mapped storage, whose pages go back after each phase.

``base`` is the framework (torch + diffusers imported: 0.45 GB measured on CPU; a CUDA context ~0.5 GB,
not measured). Strategies change the resident part: ``balanced`` keeps one component on the GPU at a time
(model CPU offload) and slices the VAE; ``sequential`` keeps about one leaf module (group offloading);
``aggressive`` adds VAE tiling, attention slicing and fp8 UNet storage. On a CPU no offloading applies
(engine/memory.py): every strategy but ``none`` stores the UNet in fp8 and slices the VAE, ``sequential``
and ``aggressive`` tile it. No attention term: torch's scaled-dot-product attention does not hold the
score matrix (measured: activations grow linearly with the pixels).

With the CPU policy's storage (weights kept as the file's memory-mapped fp16 pages, the text encoders'
token tables included; engine/pages.py hands each component's pages back after its phase, and the pages
loading read right after the load)::

    load       = base + 0.15 * weights + F
    run        = base + F + max(unet + units + unet_act, vae + decode, text encoders + WORK)
    peak       = max(load, run)

where ``unet`` is the fp16 UNet's pages, or 0 under the fp8 strategies, whose converted UNet is ordinary
memory held in every phase: ``F`` = P_unet bytes then (0 otherwise).

Calibration (this CPU, fp32, peak RSS above the loaded weights, polled every 5 ms, real-size SD1.5 modules
with random weights, ``benchmarks/memory.py``): A and WORK from UNet forwards at 256² and 512², batch 2
(204 and 477 MB: a line through both); D from VAE decodes at 256² and 512² (343 and 1050 MB); ``load``
against FACTS' raw diffusers from_single_file (fp16 file, 256²): 6.7 GB measured, 6.85 GB estimated
(+2%). SDXL and the demo use SD1's coefficients scaled as stated in ``_FAMILY``, other families SD1's (not
calibrated; GPU figures are not calibrated at all). Checked with the CPU storage policy (fp16 files, 4
Euler steps; README): SD 1.5 256² none -8%, the fp8 strategies -5% to -1%; SDXL 512² none -9%, balanced
-7% (estimate below the measured peak in every case).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

from ..catalog.families import Family
from ..errors import RequestError
from ..plan import Decision, MemoryPlan, ModelFormat, ResolvedRequest, Source
from ..request import GenerationRequest
from .device import DeviceInfo

log = logging.getLogger(__name__)

__all__ = [
    "BASE_BYTES",
    "MARGIN",
    "WORK_BYTES",
    "MemoryChoice",
    "MemoryEstimate",
    "Strategy",
    "Workload",
    "choose_strategy",
    "estimate",
    "plan_memory",
    "workload",
]

GB = 10**9
#: Share of the budget kept free: an estimate is picked only when it fits in (1 - MARGIN) * budget.
MARGIN = 0.10


class Strategy(str, Enum):
    """How hard the engine works to save memory, least to most."""

    NONE = "none"
    BALANCED = "balanced"
    SEQUENTIAL = "sequential"
    AGGRESSIVE = "aggressive"


#: Framework bytes before any weight: torch + diffusers imported (CPU, measured), CUDA context (assumed).
BASE_BYTES = {"cpu": 450_000_000, "cuda": 500_000_000, "mps": 500_000_000}
_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}

#: Workspace bytes a forward or decode holds whatever the size (the intercept of the measured lines).
WORK_BYTES = 110_000_000
# Per family: (A: activation values per latent pixel per row, D: VAE decode values per output pixel).
_SD1 = (11_140.0, 900.0)
_FAMILY: dict[Family, tuple[float, float]] = {
    Family.SD1: _SD1,
    Family.SD2: _SD1,  # same UNet widths and VAE
    Family.SDXL: (_SD1[0] * 1.3, _SD1[1]),  # assumed, not measured: wider mid levels, same VAE
    Family.SDXL_REFINER: (_SD1[0] * 1.3, _SD1[1]),
    Family.DEMO: (_SD1[0] * 0.4, _SD1[1] * 0.25),  # assumed: (64,128,128) channels vs SD1's 320…1280
}
#: Parameters of one ControlNet relative to its UNet (SD1.5: 361 M vs 860 M) and of an IP-Adapter's image
#: encoder (OpenCLIP ViT-H/14).
_CONTROLNET_SHARE = 0.42
_IP_ENCODER_PARAMS = 632_000_000
_FP8_UNET_BYTES = 1
#: Share of the weights group offloading keeps on the device (one leaf module and its neighbours).
_LEAF_SHARE = 0.02
#: Share of a memory-mapped file's weights that loading reads (conversions, upcasts; SD 1.5, measured
#: 0.76 GB peak at load with 2.13 GB of weights and 0.45 GB of framework).
_LOAD_READ = 0.15


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    """Bytes a plan needs on its device with one strategy, and the parts of the sum."""

    strategy: Strategy
    peak_bytes: int
    base_bytes: int
    weight_bytes: int
    resident_weight_bytes: int
    activation_bytes: int
    decode_bytes: int
    load_bytes: int

    def describe(self) -> str:
        """One line: "~9.8 GB (weights 6.9, activations 1.2, decode 0.4)"."""
        return (
            f"~{self.peak_bytes / GB:.1f} GB (weights {self.resident_weight_bytes / GB:.1f}, activations "
            f"{self.activation_bytes / GB:.1f}, decode {self.decode_bytes / GB:.1f}, load {self.load_bytes / GB:.1f})"
        )


@dataclass(frozen=True, slots=True)
class Workload:
    """What a plan computes: component sizes, image size, batch, CFG, adapters, dtype and device."""

    family: Family
    unet_params: int
    text_encoder_params: int
    vae_params: int
    width: int
    height: int
    batch: int = 1
    cfg: bool = True
    controlnets: int = 0
    ip_adapters: int = 0
    dtype: str = "float32"
    device: str = "cpu"
    file_bytes: int = 0
    #: Dtype the weights are stored in when narrower than ``dtype`` (the CPU policy's fp16 storage).
    storage_dtype: str | None = None
    #: Parameters of a second model held for the run (the hires checkpoint), every component.
    second_model_params: int = 0


def _decode(values_per_px: float, w: Workload, b: int, *, sliced: bool, tiled: bool) -> int:
    tile = 512  # engine/memory.py's TILE_PX, for every family
    pixels = min(w.width, tile) * min(w.height, tile) if tiled else w.width * w.height
    return int(WORK_BYTES + values_per_px * pixels * b * (1 if sliced or tiled else w.batch))


def estimate(w: Workload, strategy: Strategy = Strategy.NONE) -> MemoryEstimate:
    """The peak bytes of ``w`` on its device under ``strategy`` (see the module docstring)."""
    act, dec = _FAMILY.get(w.family, _SD1)
    b = _DTYPE_BYTES.get(w.dtype, 4)
    sb = _DTYPE_BYTES.get(w.storage_dtype or w.dtype, b)  # bytes per stored weight
    units = w.controlnets * _CONTROLNET_SHARE * w.unet_params + w.ip_adapters * _IP_ENCODER_PARAMS
    unet_b = w.unet_params * sb
    second = w.second_model_params * sb  # held beside the first model (the hires checkpoint)
    weights = int(unet_b + (w.text_encoder_params + w.vae_params + units) * sb + second)
    rows = w.batch * (2 if w.cfg else 1)
    latent_px = (w.width // 8) * (w.height // 8)
    aggressive = strategy is Strategy.AGGRESSIVE
    activations = int(WORK_BYTES + act * latent_px * rows * b * (1 + 0.5 * w.controlnets))
    cpu = w.device == "cpu"
    tiled = aggressive or (cpu and strategy is Strategy.SEQUENTIAL)
    decode = _decode(dec, w, b, sliced=strategy is not Strategy.NONE, tiled=tiled)
    fp8 = aggressive or (cpu and strategy is not Strategy.NONE)
    stored = weights - unet_b + w.unet_params * _FP8_UNET_BYTES if fp8 else weights
    if strategy is Strategy.NONE:
        resident = weights
    elif strategy is Strategy.BALANCED and w.device != "cpu":  # model offload: one component at a time
        resident = int(max(unet_b + units * b, w.text_encoder_params * b, w.vae_params * b))
    elif w.device == "cpu":  # no offloading hooks work on a CPU: the UNet stored in fp8 (engine/memory.py)
        resident = stored
    else:  # group offloading at leaf level: about one leaf module held
        resident = int(_LEAF_SHARE * stored)
    base = BASE_BYTES.get(w.device, BASE_BYTES["cuda"])
    if cpu and w.storage_dtype:  # memory-mapped: each phase holds its own component's pages only
        # an fp8 UNet is converted into ordinary memory: held in every phase, not handed back
        held = (w.unet_params * _FP8_UNET_BYTES if fp8 else 0) + second
        mapped = stored - (w.text_encoder_params + w.vae_params) * sb - held  # the fp16 UNet and the units
        load = base + int(_LOAD_READ * weights) + held
        run = max(mapped + activations, w.vae_params * sb + decode, w.text_encoder_params * sb + WORK_BYTES)
        peak = max(load, base + held + run)
        resident = held + mapped
        return MemoryEstimate(strategy, int(peak), base, weights, resident, activations, decode, load)
    # on a CPU, loading holds every weight at compute precision plus a single file's state dict
    load = base + weights + w.file_bytes if cpu else 0
    peak = max(load, base + resident + max(activations, decode))
    return MemoryEstimate(strategy, int(peak), base, weights, resident, activations, decode, load)


@dataclass(frozen=True, slots=True)
class MemoryChoice:
    """The strategy picked for a plan, its estimate, the budget it was held against, and why."""

    strategy: Strategy
    estimate: MemoryEstimate
    budget_bytes: int | None
    fits: bool
    reason: str


def _what(w: Workload) -> str:
    return f"{w.family.value} {w.width}x{w.height}" + (f" x{w.batch}" if w.batch > 1 else "")


def choose_strategy(w: Workload, budget_bytes: int | None, requested: Strategy | None = None) -> MemoryChoice:
    """The least aggressive strategy whose estimate fits ``budget_bytes`` less the margin (or ``requested``).

    Unknown budget: ``none``. Nothing fits: the strategy with the smallest estimate (the most aggressive of
    equals), marked as not fitting (the caller warns).
    """
    room = None if budget_bytes is None else int(budget_bytes * (1 - MARGIN))
    where = "free VRAM" if w.device != "cpu" else "RAM available"
    if requested is not None:
        e = estimate(w, requested)
        fits = room is None or e.peak_bytes <= room
        budget = "unknown memory" if budget_bytes is None else f"{budget_bytes / GB:.1f} GB {where}"
        verdict = "" if fits else " — it may not fit"
        reason = f"asked for; {_what(w)} needs ~{e.peak_bytes / GB:.1f} GB, {budget}{verdict}"
        return MemoryChoice(requested, e, budget_bytes, fits, reason)
    if room is None or budget_bytes is None:
        e = estimate(w, Strategy.NONE)
        return MemoryChoice(
            Strategy.NONE,
            e,
            None,
            True,
            f"{_what(w)} needs ~{e.peak_bytes / GB:.1f} GB; memory unknown → none",
        )
    need = estimate(w, Strategy.NONE).peak_bytes
    for strategy in Strategy:
        e = estimate(w, strategy)
        if e.peak_bytes <= room:
            reason = (
                f"{_what(w)} needs ~{need / GB:.1f} GB, {budget_bytes / GB:.1f} GB {where} "
                f"(less {MARGIN:.0%} margin) → {strategy.value} (~{e.peak_bytes / GB:.1f} GB)"
            )
            return MemoryChoice(strategy, e, budget_bytes, True, reason)
    # the leanest; of equals (the load peak dominates) the most aggressive, which holds least afterwards
    e = min((estimate(w, s) for s in reversed(Strategy)), key=lambda x: x.peak_bytes)
    best = e.strategy.value
    reason = (
        f"{_what(w)} needs ~{need / GB:.1f} GB, ~{e.peak_bytes / GB:.1f} GB with the leanest strategy "
        f"({best}); {budget_bytes / GB:.1f} GB {where} → {best}, may not fit"
    )
    return MemoryChoice(e.strategy, e, budget_bytes, False, reason)


def parse_strategy(name: str) -> Strategy:
    """A strategy by name; RequestError naming the choices otherwise."""
    try:
        return Strategy(name.strip().lower())
    except ValueError:
        names = ", ".join(s.value for s in Strategy)
        raise RequestError(f"--memory {name!r} is not a memory strategy; use one of {names}.") from None


def plan_memory(
    request: GenerationRequest,
    resolved: ResolvedRequest,
    device: DeviceInfo,
    dtype: str,
    shape: tuple[int, int, int, float],
    decisions: list[Decision],
    storage: str | None = None,
) -> MemoryPlan | None:
    """The memory part of a plan (``shape``: width, height, batch, CFG scale), its decision appended;
    ``storage`` is the CPU policy's weight storage dtype.

    None when the model's sizes are unknown (a Hub model) and no strategy was asked for.
    """
    requested = parse_strategy(request.memory) if request.memory is not None else None
    if resolved.unet_params is None:
        if requested is None:
            return None
        decisions.append(Decision("memory", requested.value, Source.USER, "asked for; model size unknown"))
        return MemoryPlan(requested.value, 0, device.memory_budget)
    work = workload(resolved, device, dtype, shape, storage)
    choice = choose_strategy(work, device.memory_budget, requested)
    if not choice.fits:
        log.warning("memory: %s", choice.reason)
    source = Source.USER if requested is not None else Source.DEVICE
    decisions.append(Decision("memory", choice.strategy.value, source, choice.reason))
    return MemoryPlan(choice.strategy.value, choice.estimate.peak_bytes, choice.budget_bytes)


def workload(
    resolved: ResolvedRequest,
    device: DeviceInfo,
    dtype: str,
    shape: tuple[int, int, int, float],
    storage: str | None = None,
) -> Workload:
    """The :class:`Workload` of a resolved request (its sizes must be known: ``unet_params`` set)."""
    width, height, batch, cfg = shape
    single = resolved.model.format is ModelFormat.SINGLE_FILE
    return Workload(
        family=_family(resolved.model.family),
        unet_params=resolved.unet_params or 0,
        text_encoder_params=resolved.text_encoder_params or 0,
        vae_params=resolved.vae_params or 0,
        width=width,
        height=height,
        batch=batch,
        cfg=cfg > 1.0,
        controlnets=len(resolved.controls),
        ip_adapters=len(resolved.ip_adapters),
        dtype=dtype,
        device=device.kind,
        file_bytes=(resolved.weight_file_bytes or 0) if single else 0,
        storage_dtype=storage,
        second_model_params=resolved.hires_checkpoint_params or 0,
    )


def _family(name: str) -> Family:
    try:
        return Family(name)
    except ValueError:
        return Family.UNKNOWN
