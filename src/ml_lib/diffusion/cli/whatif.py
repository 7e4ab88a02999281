"""``plan --device/--vram/--ram``: plan as if on other hardware, and the memory summary ``plan`` prints."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from ._common import safe_text

if TYPE_CHECKING:
    from ..plan import GenerationPlan
    from ..planning.device import DeviceInfo

__all__ = ["DeviceOpt", "RamOpt", "VramOpt", "memory_summary", "whatif_hardware"]

GB = 10**9

DeviceOpt = Annotated[
    str | None,
    typer.Option("--device", help="cpu, cuda or mps (default: the best one here)."),
]
VramOpt = Annotated[
    str | None,
    typer.Option("--vram", help="Plan as if on a CUDA GPU with this much memory, e.g. 6GB (nothing loads)."),
]
RamOpt = Annotated[
    str | None,
    typer.Option(
        "--ram", help="Plan as if on a machine with this much RAM in all, e.g. 16GB (nothing loads)."
    ),
]


def whatif_hardware(device: str | None, vram: str | None, ram: str | None) -> DeviceInfo | None:
    """The hypothetical device ``--device/--vram/--ram`` describe; None when they name this machine (no
    size given and the device, if any, is here: the caller detects it as usual)."""
    from ..planning.whatif import hypothetical_device, parse_bytes

    vram_bytes = parse_bytes(vram, "--vram") if vram is not None else None
    ram_bytes = parse_bytes(ram, "--ram") if ram is not None else None
    if vram_bytes is None and ram_bytes is None:
        if device is None:
            return None
        from ..engine.device import available_devices

        if device.partition(":")[0] in available_devices():
            return None
    kind = device or ("cuda" if vram_bytes is not None else "cpu")
    return hypothetical_device(kind, vram=vram_bytes, ram=ram_bytes, cores=os.cpu_count() or 1)


def memory_summary(plan: GenerationPlan) -> str:
    """One line (rich markup, escaped): strategy, estimate, budget and the planner's reason."""
    memory = plan.memory
    if memory is None:
        return "[bold]memory[/]: not estimated (the model's size is unknown before it loads)"
    where = "free VRAM" if plan.device.startswith("cuda") else "RAM available"
    budget = "unknown" if memory.budget_bytes is None else f"{memory.budget_bytes / GB:.1f} GB {where}"
    decision = plan.decision("memory")
    device = plan.decision("device")
    on = f" on {device.reason}" if device is not None and device.reason else ""
    reason = f" — {decision.reason}" if decision is not None else ""
    return safe_text(
        f"memory{on}: strategy {memory.strategy}, estimate ~{memory.estimated_peak_bytes / GB:.1f} GB, "
        f"budget {budget}{reason}"
    )
