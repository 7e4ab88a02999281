"""Sampler and schedule names between ours (A1111's) and ComfyUI's ``KSampler`` (pure data).

ComfyUI's names are those of ``comfy/sampler_names.py`` (``KSampler.SAMPLERS`` / ``SCHEDULERS``);
the test fixture ``tests/fixtures/comfyui_nodes.json`` holds them as ComfyUI defines them and the tests
check every name here against it. A1111 ``DPM++ 2M Karras`` is ComfyUI ``dpmpp_2m`` + ``karras``.
"""

from __future__ import annotations

from ..errors import UnknownSamplerError
from ..samplers import SAMPLERS, SamplerChoice, parse_sampler

__all__ = [
    "COMFY_DISCARDING",
    "COMFY_SAMPLERS",
    "COMFY_SCHEDULES",
    "from_comfy_sampler",
    "to_comfy_sampler",
]

#: Our sampler → ComfyUI ``sampler_name``. Missing: DPM++ 3M, PLMS and TCD (no ComfyUI core sampler).
COMFY_SAMPLERS: dict[str, str] = {
    "Euler": "euler",
    "Euler a": "euler_ancestral",
    "Heun": "heun",
    "LMS": "lms",
    "DPM2": "dpm_2",
    "DPM2 a": "dpm_2_ancestral",
    "DPM++ 2M": "dpmpp_2m",
    "DPM++ 2M SDE": "dpmpp_2m_sde",
    "DPM++ SDE": "dpmpp_sde",
    "DPM++ 3M SDE": "dpmpp_3m_sde",
    "DDIM": "ddim",
    "DDPM": "ddpm",
    "UniPC": "uni_pc",
    "DEIS": "deis",
    "LCM": "lcm",
}

#: ComfyUI samplers that drop the penultimate sigma (``comfy/samplers.py`` ``DISCARD_PENULTIMATE_SIGMA_SAMPLERS``).
COMFY_DISCARDING = frozenset({"dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"})

#: Our schedule → ComfyUI ``scheduler`` (DDIM's uniform steps are ComfyUI's ``ddim_uniform``).
COMFY_SCHEDULES: dict[str, str] = {
    "Uniform": "normal",
    "Karras": "karras",
    "Exponential": "exponential",
    "SGM Uniform": "sgm_uniform",
    "Beta": "beta",
}

#: ComfyUI sampler names that are the same algorithm as one of ours with the noise drawn elsewhere.
_COMFY_ALIASES: dict[str, str] = {
    "dpmpp_2m_sde_gpu": "DPM++ 2M SDE",
    "dpmpp_sde_gpu": "DPM++ SDE",
    "dpmpp_3m_sde_gpu": "DPM++ 3M SDE",
    "uni_pc_bh2": "UniPC",
}
_FROM_COMFY = {comfy: ours for ours, comfy in COMFY_SAMPLERS.items()} | _COMFY_ALIASES
_SCHEDULE_FROM_COMFY = {comfy: ours for ours, comfy in COMFY_SCHEDULES.items()} | {"ddim_uniform": "Uniform"}


def to_comfy_sampler(choice: SamplerChoice) -> tuple[str, str] | None:
    """ComfyUI ``(sampler_name, scheduler)`` for one of our choices, or None when ComfyUI has none."""
    sampler = COMFY_SAMPLERS.get(choice.sampler)
    schedule = COMFY_SCHEDULES.get(choice.schedule)
    if sampler is None or schedule is None:
        return None
    if SAMPLERS[choice.sampler].discard_penultimate_sigma and sampler not in COMFY_DISCARDING:
        return None  # A1111's DPM++ 3M SDE drops the penultimate sigma; ComfyUI's dpmpp_3m_sde keeps it
    if choice.sampler == "DDIM" and choice.schedule == "Uniform":
        schedule = "ddim_uniform"
    return sampler, schedule


def from_comfy_sampler(sampler: str, scheduler: str | None) -> tuple[SamplerChoice | None, str | None]:
    """Our choice for a ComfyUI sampler and scheduler, and why not when there is none.

    ``simple`` (ComfyUI's default schedule) has no diffusers counterpart; it is read as Uniform, its
    closest, and said so.
    """
    ours = _FROM_COMFY.get(sampler)
    if ours is None:
        return None, f"ComfyUI sampler {sampler!r} has no diffusers counterpart here"
    note = None
    if SAMPLERS[ours].discard_penultimate_sigma and sampler not in COMFY_DISCARDING:
        note = f"ComfyUI's {sampler} keeps the penultimate sigma; {ours} here drops it, as A1111's does"
    schedule = _SCHEDULE_FROM_COMFY.get(scheduler or "normal")
    if schedule is None and scheduler == "simple":
        schedule = "Uniform"
        note = "; ".join(n for n in (note, "ComfyUI schedule 'simple' read as Uniform, its closest") if n)
    if schedule is None:
        return None, f"ComfyUI scheduler {scheduler!r} has no diffusers counterpart here"
    try:
        return parse_sampler(ours, schedule), note
    except UnknownSamplerError as exc:
        return None, str(exc)
