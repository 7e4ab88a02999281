"""Find the compute device and map dtype names to torch dtypes."""

from __future__ import annotations

import psutil
import torch

from ..planning.device import DeviceInfo

__all__ = ["detect_device", "torch_dtype"]

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def detect_device(prefer: str | None = None) -> DeviceInfo:
    """CUDA when present, else Apple MPS, else CPU; ``prefer`` ("cpu", "cuda", "mps") forces one."""
    kind = prefer
    if kind is None:
        if torch.cuda.is_available():
            kind = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            kind = "mps"
        else:
            kind = "cpu"
    ram = psutil.virtual_memory()
    if kind == "cuda":
        free, total = torch.cuda.mem_get_info()
        major, minor = torch.cuda.get_device_capability()
        return DeviceInfo(
            "cuda",
            torch.cuda.get_device_name(),
            total,
            free,
            ram_total=ram.total,
            ram_available=ram.available,
            compute_capability=f"{major}.{minor}",
        )
    if kind == "mps":
        return DeviceInfo("mps", "Apple MPS", ram_total=ram.total, ram_available=ram.available)
    from .threads import cpu_cores

    cores = cpu_cores()
    return DeviceInfo(
        "cpu", f"CPU ({cores} cores)", cores=cores, ram_total=ram.total, ram_available=ram.available
    )


def torch_dtype(name: str) -> torch.dtype:
    """torch dtype for a plan's dtype name."""
    return _DTYPES[name]
