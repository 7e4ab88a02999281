"""``generate --verbose``: seconds and peak memory per phase, the memory plan against what was measured,
and every retry the engine made."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._common import safe_text

if TYPE_CHECKING:
    from ..result import GenerationResult, PhaseMemory

__all__ = ["verbose_lines"]

GB = 10**9


def _gb(n: int | None) -> str:
    return "-" if n is None else f"{n / GB:.2f} GB"


def _phase(p: PhaseMemory) -> str:
    text = f"RSS {_gb(p.rss_peak)}"
    if p.cuda_allocated_peak is not None:
        text += f", CUDA allocated {_gb(p.cuda_allocated_peak)} / reserved {_gb(p.cuda_reserved_peak)}"
    return text


def verbose_lines(result: GenerationResult) -> list[str]:
    """The lines ``--verbose`` prints after the saved paths (rich markup, file text escaped)."""
    t, plan = result.timings, result.plan
    lines = [
        f"time     load {t.load:.2f}s · encode {t.encode:.2f}s · denoise {t.denoise:.2f}s · "
        f"decode {t.decode:.2f}s · save {t.save:.2f}s · total {t.total:.2f}s"
    ]
    m = result.memory
    if m is not None:
        phases = (("load", m.load), ("encode", m.encode), ("denoise", m.denoise), ("decode", m.decode))
        lines.append("peak     " + " · ".join(f"{name} {_phase(p)}" for name, p in phases))
        lines.append(f"RSS      {_gb(m.rss_before)} before, {_gb(m.rss_after)} after cleanup")
    if plan.memory is not None:
        measured = max((p.rss_peak for p in (m.load, m.encode, m.denoise, m.decode)), default=0) if m else 0
        budget = "unknown" if plan.memory.budget_bytes is None else _gb(plan.memory.budget_bytes)
        lines.append(
            f"memory   strategy {plan.memory.strategy} · estimated {_gb(plan.memory.estimated_peak_bytes)} · "
            f"measured {_gb(measured)} · budget {budget}"
        )
    for r in result.retries:
        lines.append(safe_text(f"retry    {r.describe()} ({r.detail})"))
    if not result.retries:
        lines.append("retry    none")
    return lines
