"""Find the compute device and map dtype names to torch dtypes."""

from __future__ import annotations

import psutil
import torch

from ..errors import DeviceUnavailableError
from ..planning.device import DeviceInfo

__all__ = ["available_devices", "check_device", "detect_device", "torch_dtype"]

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _mps() -> bool:
    return getattr(torch.backends, "mps", None) is not None and bool(torch.backends.mps.is_available())


def available_devices() -> tuple[str, ...]:
    """The device kinds torch can compute on here ("cuda", "mps", "cpu")."""
    return (*(("cuda",) if torch.cuda.is_available() else ()), *(("mps",) if _mps() else ()), "cpu")


def check_device(device: str) -> None:
    """DeviceUnavailableError, in one line, when ``device`` ("cpu", "cuda", "cuda:1", "mps") is not here."""
    kind, _, index = device.partition(":")
    here = available_devices()
    if kind in here and not (kind == "cuda" and index.isdigit() and int(index) >= torch.cuda.device_count()):
        return
    raise DeviceUnavailableError(
        f"This needs the {device} device, which this machine does not have (available: {', '.join(here)}); "
        "plan on this machine's hardware to generate here (what-if plans, with --vram/--ram, only show a plan)."
    )


def detect_device(prefer: str | None = None) -> DeviceInfo:
    """CUDA when present, else Apple MPS, else CPU; ``prefer`` ("cpu", "cuda", "mps") forces one
    (DeviceUnavailableError when it is not here)."""
    if prefer is not None:
        check_device(prefer)
    kind = prefer
    if kind is None:
        if torch.cuda.is_available():
            kind = "cuda"
        elif _mps():
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
