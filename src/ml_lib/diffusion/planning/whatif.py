"""What-if hardware: a :class:`DeviceInfo` for a machine that is not this one, from sizes the user gives.

``plan --device cuda --vram 6GB`` plans as if on an idle 6 GB GPU: free VRAM is the whole card (the CUDA
context is in the estimate's base). ``--ram 16GB`` is the machine's total RAM, of which
:data:`RAM_AVAILABLE_SHARE` is taken as available (the operating system and a browser hold the rest).
Pure: nothing here looks at the real machine.
"""

from __future__ import annotations

import re

from ..errors import RequestError
from .device import DeviceInfo

__all__ = ["DEVICE_KINDS", "RAM_AVAILABLE_SHARE", "hypothetical_device", "parse_bytes"]

DEVICE_KINDS = ("cpu", "cuda", "mps")
#: Share of a what-if machine's total RAM a generation may use.
RAM_AVAILABLE_SHARE = 0.75
_UNITS = {"": 10**9, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_BINARY = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)(b?)\s*", re.IGNORECASE)
_MIN_BYTES = 10**8  # 100 MB: anything smaller is a typo ("6" is read as 6 GB)


def parse_bytes(text: str, option: str = "--vram") -> int:
    """``"6GB"``, ``"6 G"``, ``"6"`` (GB), ``"6GiB"``, ``"8192MB"`` → bytes; RequestError otherwise."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise RequestError(f"{option} {text!r} is not a size; write it like 6GB, 8192MB or 16GiB.")
    number, unit, binary, _ = match.groups()
    unit = unit.lower()
    scale = _BINARY[unit] if binary and unit in _BINARY else _UNITS[unit]
    value = int(float(number) * scale)
    if value < _MIN_BYTES:
        raise RequestError(f"{option} {text!r} is under 100 MB; write the unit, e.g. 6GB.")
    return value


def hypothetical_device(
    kind: str, *, vram: int | None = None, ram: int | None = None, cores: int = 4
) -> DeviceInfo:
    """The DeviceInfo of a machine with ``vram`` bytes of GPU memory (CUDA only) and ``ram`` bytes of RAM
    (None: unknown, so the plan cannot hold memory against it). RequestError for combinations that do
    not exist (VRAM without CUDA, a CUDA plan without its VRAM)."""
    if kind not in DEVICE_KINDS:
        raise RequestError(f"--device {kind!r} is not one of {', '.join(DEVICE_KINDS)}.")
    if vram is not None and kind != "cuda":
        raise RequestError(f"--vram is a CUDA GPU's memory; {kind} uses the RAM: give --ram instead.")
    if kind == "cuda" and vram is None:
        raise RequestError("A what-if CUDA plan needs the GPU's memory: add --vram, e.g. --vram 6GB.")
    available = None if ram is None else int(ram * RAM_AVAILABLE_SHARE)
    sizes = ", ".join(
        f"{label} {n / 10**9:g} GB" for label, n in (("VRAM", vram), ("RAM", ram)) if n is not None
    )
    name = {"cuda": "CUDA GPU", "mps": "Apple MPS", "cpu": f"CPU ({cores} cores)"}[kind]
    return DeviceInfo(
        kind,
        f"what-if: {name}" + (f", {sizes}" if sizes else ""),
        total_memory=vram,
        free_memory=vram,
        cores=cores if kind == "cpu" else 1,
        ram_total=ram,
        ram_available=available,
    )
