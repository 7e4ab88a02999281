"""The ``KSampler`` steps and denoise under which ComfyUI samples the noise levels our engine samples, and
the ControlNet percents that switch a unit at the sampler call where our engine switches it (pure;
ComfyUI's side is computed by :mod:`.comfyui_sigmas`).

Our engine (as A1111) runs the last ``run`` steps of a ``total`` step schedule: txt2img all ``steps``,
img2img and inpainting A1111's ``int(steps x min(strength, 0.999)) + 1`` of ``steps``
(``InitImage.steps_run``), the hires pass its ``k`` steps of ``int(k / min(denoise, 0.999))``
(:func:`~..planning.hires.hires_schedule`).
ComfyUI's ``KSampler`` with ``denoise = d < 1`` runs its last ``steps`` of an ``int(steps / d)`` step
schedule, so :func:`ksampler_run` writes ``steps = run`` and a ``d`` in ``(run / (total + 1), run / total]``
(the roundest); for DDIM it searches a ``T`` and such a ``d`` whose sigmas are ours.

DDIM: our engine's timesteps are diffusers' "leading" ``j * (1000 // n) + 1`` for ``j < n``
(``steps_offset`` 1, as the SD configs have it); ComfyUI's ``ddim_uniform`` of ``n`` steps takes every
``1000 // n``-th timestep from 1, which is ``n`` of them for some ``n`` (20) and more for others (31 for
30, 7 for 6). Its lowest ``n`` are ours, so a denoise just under 1 (0.99 for 30) drops the extra top one.

ControlNet: diffusers' ControlNet pipelines use a unit at call ``i`` of ``n`` when ``i / n >= start`` and
``(i + 1) / n <= end``; ComfyUI's ``ControlNetApplyAdvanced`` when the call's sigma lies between
``percent_to_sigma(start_percent)`` and ``percent_to_sigma(end_percent)`` (``comfy/controlnet.py``
``ControlBase.pre_run`` / ``get_control``), so the percents are put between the noise levels of the calls
where the unit turns on and off (:meth:`~.comfyui_sigmas.Timeline.percent_after`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .comfyui_sigmas import Timeline, discrete_sampling, ksampler_sigmas

__all__ = ["KSamplerRun", "control_percents", "engine_sigmas", "ksampler_run"]

_DDIM = "ddim_uniform"
_MAX_DECIMALS = 10


@dataclass(frozen=True, slots=True)
class KSamplerRun:
    """What a ``KSampler`` is given: ``steps`` and ``denoise`` (the scheduler is the pass's)."""

    steps: int
    denoise: float


def engine_sigmas(sampler: str, scheduler: str, total: int, run: int) -> tuple[float, ...]:
    """The noise levels of our engine's last ``run`` steps of a ``total`` step schedule, with the
    sampler's and scheduler's ComfyUI names (the last one 0: the end of sampling)."""
    ms = discrete_sampling()
    if scheduler == _DDIM:
        train = len(ms.log_sigmas)
        stride = train // total
        if stride < 1 or (total - 1) * stride + 1 >= train:
            raise ValueError(f"DDIM's {total} leading steps do not fit in {train} training timesteps")
        timesteps = [j * stride + 1 for j in range(total)][::-1]
        full = [math.exp(ms.log_sigmas[t]) for t in timesteps] + [0.0]
    else:
        full = list(ksampler_sigmas(ms, sampler, scheduler, total))
    return tuple(full[-(run + 1) :])


def _denoise(run: int, total: int) -> float | None:
    """The roundest ``d`` with ``int(run / d) == total`` that ComfyUI treats as partial (``<= 0.9999``)."""
    low, high = run / (total + 1), min(run / total, 0.9999)
    for decimals in range(2, _MAX_DECIMALS + 1):
        scale = 10**decimals
        top = math.floor(high * scale)
        for d in (top / scale, (top - 1) / scale):  # run / top can fall just short of total in floats
            if d > low and d > 0 and int(run / d) == total:
                return d
    return None


def _same(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return len(a) == len(b) and all(
        math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12) for x, y in zip(a, b, strict=True)
    )


def ksampler_run(sampler: str, scheduler: str, total: int, run: int, *, discrete: bool = True) -> KSamplerRun:
    """The ``KSampler`` steps and denoise that sample exactly our engine's last ``run`` steps of ``total``.

    Our schedule of ``total`` steps is ComfyUI's own of that name (the engine test checks it against our
    diffusers schedulers) but for DDIM, whose timesteps are searched among ``ddim_uniform``'s with
    ComfyUI's noise levels (``discrete``: ``ModelSamplingDiscrete``, SD 1.x, 2.x, SDXL; another model
    gets the step arithmetic alone). Raises ValueError with the reason when none does."""
    if run < 1:
        raise ValueError(f"no step of {total} runs")
    if not discrete or scheduler != _DDIM:  # set_steps: the last ``run`` of the same ``total`` schedule
        denoise = 1.0 if run == total else _denoise(run, total)
        if denoise is None:
            raise ValueError(f"no KSampler denoise runs {run} steps of a {total}-step schedule")
        return KSamplerRun(run, denoise)
    ms = discrete_sampling()
    target = engine_sigmas(sampler, scheduler, total, run)
    for candidate in dict.fromkeys((total, *range(run, total + 2))):
        # a schedule of ``run`` steps runs whole at denoise 1, or (DDIM) short of its top step below 1
        for denoise in (1.0, _denoise(run, candidate)) if candidate == run else (_denoise(run, candidate),):
            if denoise is not None and _same(ksampler_sigmas(ms, sampler, scheduler, run, denoise), target):
                return KSamplerRun(run, denoise)
    what = f"{run} steps of a {total}-step {scheduler} schedule" if run < total else f"{total} steps"
    raise ValueError(f"no KSampler steps and denoise make ComfyUI's {sampler} run our {what}")


def control_percents(start: float, end: float, line: Timeline) -> tuple[float, float]:
    """``ControlNetApplyAdvanced``'s (start_percent, end_percent) for a unit our engine uses from
    ``start`` to ``end`` of the pass whose ComfyUI calls are ``line``. Raises ValueError when the unit
    is used at no call or ComfyUI cannot switch where ours does."""
    n = len(line.calls)
    active = [i for i in range(n) if not (i / n < start or (i + 1) / n > end)]
    if not active:
        raise ValueError(
            f"a ControlNet unit from {start:g} to {end:g} is used at none of the {n} sampler calls, "
            "which ControlNetApplyAdvanced cannot say"
        )
    first, last = active[0], active[-1]
    start_percent = 0.0 if first == 0 else line.percent_after(first - 1)
    end_percent = 1.0 if last == n - 1 else line.percent_after(last)
    return start_percent, end_percent
