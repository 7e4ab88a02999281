"""Device description (filled by the engine, injected here) and the dtype policy (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from ..catalog.families import Family

__all__ = ["DeviceInfo", "DtypeChoice", "choose_dtype"]


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What the engine found: ``kind`` is "cuda", "mps" or "cpu"; the device's own memory in bytes when
    known (VRAM on CUDA); the CPU cores this process may use and how many of them other processes keep busy
    (measured at planning); system RAM total and available; a CUDA device's compute capability ("8.6")."""

    kind: str
    name: str = ""
    total_memory: int | None = None
    free_memory: int | None = None
    cores: int = 1
    busy_cores: float = 0.0
    ram_total: int | None = None
    ram_available: int | None = None
    compute_capability: str | None = None

    @property
    def vram_total(self) -> int | None:
        """A CUDA device's memory; None elsewhere."""
        return self.total_memory if self.kind == "cuda" else None

    @property
    def vram_free(self) -> int | None:
        """A CUDA device's free memory; None elsewhere."""
        return self.free_memory if self.kind == "cuda" else None

    @property
    def memory_budget(self) -> int | None:
        """Bytes a generation may use where it computes: free VRAM on CUDA, available RAM otherwise
        (Apple's memory is unified); None when not measured."""
        return self.free_memory if self.kind == "cuda" else self.ram_available


@dataclass(frozen=True, slots=True)
class DtypeChoice:
    """Compute dtype for the models and the reason."""

    dtype: str
    reason: str


def choose_dtype(device: DeviceInfo, family: Family) -> DtypeChoice:
    """CUDA fp16 (SDXL's VAE upcast to fp32 by the engine), MPS fp16, CPU fp32.

    bf16 on a CPU without bf16 hardware is two orders of magnitude slower than fp32, so the CPU
    always computes in fp32.
    """
    if device.kind == "cuda":
        upcast = " (VAE decoded in fp32)" if family in (Family.SDXL, Family.SDXL_REFINER) else ""
        return DtypeChoice("float16", f"CUDA runs diffusion in fp16{upcast}")
    if device.kind == "mps":
        return DtypeChoice("float16", "Apple MPS runs diffusion in fp16")
    return DtypeChoice("float32", "CPUs compute fp32 fastest; bf16 without bf16 hardware is unusably slow")
