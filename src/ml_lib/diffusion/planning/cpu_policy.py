"""The CPU weight-storage policy (pure): which dtype weights are kept in while the CPU computes in fp32.

Measured on this 2-core machine with ``benchmarks/cpu_peers.py`` (real-size SD 1.5, fp16 single file,
256², 4 Euler steps, CFG 7; see the README for the figures of the last run):

- A file that stores fp16 (or bf16) weights is kept in that dtype, memory-mapped as read, and each layer
  computes on an fp32 copy of its own weights for its forward (``engine/storage.py``). The result is
  the fp32 pipeline's, pixel for pixel (the fp32 values are exactly the upcast file values), with half
  the weight memory and no conversion at load. It is always applied on a CPU computing in fp32: it is
  leaner and the benchmark shows it no slower, so there is no RAM threshold for it.
- A file that stores fp32 weights (the test models, some merges) is stored in fp16 only when the fp32
  estimate does not fit the RAM available less the margin: rounding the weights to fp16 changes the
  image (a few levels of 255 on a random-weight SD 1.5), a price paid only to fit.
- GPUs and fp16 compute: no decision (weights are stored in the compute dtype).
- Not applied: channels_last (``benchmarks/channels_last.py``: 0.97x the UNet time, within the noise,
  for +1.16 GB, the weights rewritten out of the file's pages, and not bit-identical).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..plan import Decision, ResolvedRequest, Source
from .device import DeviceInfo
from .memory import MARGIN, estimate, workload

__all__ = ["StorageChoice", "choose_storage", "plan_storage"]

GB = 10**9
_NARROW = ("float16", "bfloat16")


@dataclass(frozen=True, slots=True)
class StorageChoice:
    """The dtype weights are stored in between forwards and why."""

    storage: str
    reason: str


def choose_storage(
    device: DeviceInfo,
    compute: str,
    file_dtype: str | None,
    *,
    need_bytes: int | None = None,
    room_bytes: int | None = None,
) -> StorageChoice | None:
    """The storage decision for a CPU computing in ``compute`` from a file stored in ``file_dtype``.

    ``need_bytes`` is the estimated peak with weights in the compute dtype, ``room_bytes`` the RAM it may
    use (available less the margin). None when there is nothing to decide (not a CPU, not fp32 compute,
    or an fp32 file that fits).
    """
    if device.kind != "cpu" or compute != "float32":
        return None
    if file_dtype in _NARROW:
        short = "fp16" if file_dtype == "float16" else "bf16"
        return StorageChoice(
            file_dtype,
            f"the file stores {short}: weights kept as read (memory-mapped), each layer computes in fp32 — "
            "the fp32 result with half the weight memory",
        )
    if (
        file_dtype == "float32"
        and need_bytes is not None
        and room_bytes is not None
        and need_bytes > room_bytes
    ):
        return StorageChoice(
            "float16",
            f"fp32 weights need ~{need_bytes / GB:.1f} GB, {room_bytes / GB:.1f} GB free → stored in fp16, "
            "computed in fp32 (rounding the weights changes pixels slightly)",
        )
    return None


def plan_storage(
    resolved: ResolvedRequest,
    device: DeviceInfo,
    compute: str,
    shape: tuple[int, int, int, float],
    decisions: list[Decision],
) -> str | None:
    """The storage dtype of a plan (``shape``: width, height, batch, CFG scale), its decision appended
    when there is one; None: weights stored in the compute dtype."""
    need = room = None
    if resolved.weight_dtype == "float32" and resolved.unet_params is not None and device.ram_available:
        need = estimate(workload(resolved, device, compute, shape)).peak_bytes
        room = int(device.ram_available * (1 - MARGIN))
    choice = choose_storage(device, compute, resolved.weight_dtype, need_bytes=need, room_bytes=room)
    if choice is None:
        return None
    decisions.append(Decision("storage", choice.storage, Source.DEVICE, choice.reason))
    return choice.storage
