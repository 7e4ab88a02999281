"""ComfyUI's noise levels for one ``KSampler`` run, and the percents that switch conditioning between calls.

ComfyUI gives a conditioning a step range as percents (``ConditioningSetTimestepRange``); at sampling it
turns each percent into a sigma with ``model_sampling.percent_to_sigma`` and uses the conditioning at a
model call whose sigma ``s`` has ``sigma(end) <= s <= sigma(start)`` (``calculate_start_end_timesteps``
and ``get_area_and_mult`` in ``comfy/samplers.py``). A1111 counts model calls instead. To switch at the
call A1111 switches at, a boundary percent is chosen whose sigma lies strictly between the sigmas of the
two calls, computed here as ComfyUI computes them (Comfy-Org/ComfyUI ``comfy/samplers.py`` @ 311c0140,
``comfy/model_sampling.py`` @ 2fd20839, ``comfy/k_diffusion/sampling.py`` @ 02159d81,
``comfy/ldm/modules/diffusionmodules/util.py`` @ 22ec285c):

- ``ModelSamplingDiscrete`` (SD 1.x, 2.x, SDXL): betas ``linspace(0.00085 ** .5, 0.012 ** .5, 1000) ** 2``
  (float64), ``sigmas = ((1 - cumprod(1 - betas)) / cumprod(1 - betas)) ** .5`` stored in float32;
  ``sigma(t)`` interpolates ``log sigmas`` linearly at the fractional index ``t``;
  ``percent_to_sigma(p) = sigma((1 - p) * 999)`` (0 → no bound, 1 → 0).
- ``KSampler.calculate_sigmas``: the scheduler's list (normal, karras, exponential, sgm_uniform,
  ddim_uniform, beta), one more step with the penultimate sigma dropped for dpm_2 / dpm_2_ancestral /
  uni_pc, and with ``denoise < 1`` the last ``steps + 1`` sigmas of ``int(steps / denoise)`` steps.
- The model calls of each sampler: one at ``sigmas[i]`` per step; Heun adds one at ``sigmas[i + 1]``,
  DPM2 and DPM++ SDE one at the geometric mean of ``sigmas[i]`` and ``sigmas[i + 1]``, DPM2 ancestral
  one at the geometric mean of ``sigmas[i]`` and the ancestral ``sigma_down`` (none on a last step to 0).

Values are float64 where ComfyUI's are float32; a boundary is only accepted in the middle 80% (in log
sigma) between its two calls, far from that rounding. Pure.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from functools import cache

from .comfyui_names import COMFY_DISCARDING

__all__ = ["DiscreteSampling", "Timeline", "discrete_sampling", "ksampler_sigmas", "timeline"]

_TIMESTEPS = 1000
_LINEAR_START = 0.00085
_LINEAR_END = 0.012
_SINGLE_CALL = frozenset(
    {
        "euler",
        "euler_ancestral",
        "lms",
        "dpmpp_2m",
        "dpmpp_2m_sde",
        "dpmpp_3m_sde",
        "ddim",
        "ddpm",
        "lcm",
        "deis",
    }
)
_SECOND_CALL = frozenset({"heun", "dpm_2", "dpm_2_ancestral", "dpmpp_sde"})
_MARGIN = 0.1  # a boundary keeps this share of the log-sigma gap from each call


@dataclass(frozen=True, slots=True)
class DiscreteSampling:
    """ComfyUI's ``ModelSamplingDiscrete`` for the SD betas: the log sigmas of the 1000 training steps."""

    log_sigmas: tuple[float, ...]

    @property
    def sigma_min(self) -> float:
        return math.exp(self.log_sigmas[0])

    @property
    def sigma_max(self) -> float:
        return math.exp(self.log_sigmas[-1])

    def sigma(self, timestep: float) -> float:
        """``sigma(t)``: log sigmas interpolated at the fractional index ``t`` (clamped to 0-999)."""
        t = min(max(timestep, 0.0), len(self.log_sigmas) - 1)
        low = math.floor(t)
        high = math.ceil(t)
        w = t - low
        return math.exp((1 - w) * self.log_sigmas[low] + w * self.log_sigmas[high])

    def timestep(self, log_sigma: float) -> float:
        """The fractional index whose interpolated log sigma is ``log_sigma`` (the inverse of :meth:`sigma`)."""
        ls = self.log_sigmas
        if log_sigma <= ls[0]:
            return 0.0
        if log_sigma >= ls[-1]:
            return float(len(ls) - 1)
        k = bisect.bisect_right(ls, log_sigma) - 1
        return k + (log_sigma - ls[k]) / (ls[k + 1] - ls[k])

    def percent_to_sigma(self, percent: float) -> float:
        """``ModelSamplingDiscrete.percent_to_sigma``."""
        if percent <= 0.0:
            return 999999999.9
        if percent >= 1.0:
            return 0.0
        return self.sigma((1.0 - percent) * 999.0)


@cache
def discrete_sampling() -> DiscreteSampling:
    """The model sampling ComfyUI gives SD 1.x, SD 2.x and SDXL checkpoints (``beta_schedule`` "linear",
    which is the scaled linear schedule: a linspace of square roots, squared)."""
    start, end = _LINEAR_START**0.5, _LINEAR_END**0.5
    step = (end - start) / (_TIMESTEPS - 1)
    cumprod = 1.0
    logs = []
    for i in range(_TIMESTEPS):
        beta = (start + i * step) ** 2
        cumprod *= 1.0 - beta
        logs.append(math.log(math.sqrt((1 - cumprod) / cumprod)))
    return DiscreteSampling(tuple(logs))


def _linspace(start: float, end: float, n: int) -> list[float]:
    if n == 1:
        return [start]
    return [start + (end - start) * i / (n - 1) for i in range(n)]


def _normal(ms: DiscreteSampling, steps: int, *, sgm: bool) -> list[float]:
    start, end = float(len(ms.log_sigmas) - 1), 0.0  # timestep(sigma_max), timestep(sigma_min)
    timesteps = _linspace(start, end, steps + 1)[:-1] if sgm else _linspace(start, end, steps)
    return [ms.sigma(t) for t in timesteps] + [0.0]


def _ddim_uniform(ms: DiscreteSampling, steps: int) -> list[float]:
    sigmas = [0.0]
    stride = max(len(ms.log_sigmas) // steps, 1)
    x = 1
    while x < len(ms.log_sigmas):
        sigmas.append(math.exp(ms.log_sigmas[x]))
        x += stride
    return sigmas[::-1]


def _beta(ms: DiscreteSampling, steps: int) -> list[float]:
    try:
        from scipy.stats import beta  # ComfyUI's beta scheduler uses scipy's ppf
    except ImportError as exc:
        raise ValueError("the Beta schedule's ComfyUI steps need scipy (pip install scipy)") from exc
    total = len(ms.log_sigmas) - 1
    sigmas: list[float] = []
    last = -1.0
    for i in range(steps):
        t = float(round(float(beta.ppf(1 - i / steps, 0.6, 0.6)) * total))
        if t != last:
            sigmas.append(math.exp(ms.log_sigmas[int(t)]))
        last = t
    return [*sigmas, 0.0]


def _scheduler_sigmas(ms: DiscreteSampling, scheduler: str, steps: int) -> list[float]:
    if scheduler == "normal":
        return _normal(ms, steps, sgm=False)
    if scheduler == "sgm_uniform":
        return _normal(ms, steps, sgm=True)
    if scheduler == "karras":  # k_diffusion get_sigmas_karras, rho 7
        lo, hi = ms.sigma_min ** (1 / 7), ms.sigma_max ** (1 / 7)
        return [(hi + r * (lo - hi)) ** 7 for r in _linspace(0.0, 1.0, steps)] + [0.0]
    if scheduler == "exponential":
        return [math.exp(v) for v in _linspace(math.log(ms.sigma_max), math.log(ms.sigma_min), steps)] + [0.0]
    if scheduler == "ddim_uniform":
        return _ddim_uniform(ms, steps)
    if scheduler == "beta":
        return _beta(ms, steps)
    raise ValueError(f"ComfyUI's {scheduler!r} steps are not computed here")


def ksampler_sigmas(
    ms: DiscreteSampling, sampler: str, scheduler: str, steps: int, denoise: float = 1.0
) -> tuple[float, ...]:
    """The sigmas a ``KSampler`` with these inputs samples over (``KSampler.set_steps``)."""
    if denoise <= 0.0:
        raise ValueError("a KSampler with denoise 0 samples nothing")
    if denoise <= 0.9999:
        total = int(steps / denoise)
        return ksampler_sigmas(ms, sampler, scheduler, total)[-(steps + 1) :]
    if sampler in COMFY_DISCARDING:
        sigmas = _scheduler_sigmas(ms, scheduler, steps + 1)
        return tuple(sigmas[:-2] + sigmas[-1:])
    return tuple(_scheduler_sigmas(ms, scheduler, steps))


def _ancestral_down(sigma_from: float, sigma_to: float) -> float:
    """``get_ancestral_step(sigma_from, sigma_to, eta=1)``'s sigma_down."""
    up = min(sigma_to, (sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2) ** 0.5)
    return max(sigma_to**2 - up**2, 0.0) ** 0.5


def _geometric_mean(a: float, b: float) -> float:
    return math.exp((math.log(a) + math.log(b)) / 2)


def call_sigmas(sigmas: tuple[float, ...], sampler: str) -> tuple[float, ...]:
    """The sigma of every model call of ``sampler`` over ``sigmas``, in call order."""
    if sampler not in _SINGLE_CALL | _SECOND_CALL:
        raise ValueError(f"how ComfyUI's {sampler} calls the model is not modelled here")
    calls: list[float] = []
    for i in range(len(sigmas) - 1):
        here, after = sigmas[i], sigmas[i + 1]
        calls.append(here)
        if sampler in _SINGLE_CALL or after == 0:
            continue
        if sampler == "heun":
            calls.append(after)
        elif sampler == "dpm_2_ancestral":
            calls.append(_geometric_mean(here, _ancestral_down(here, after)))
        else:  # dpm_2, dpmpp_sde (r = 1/2 in half-log-SNR: the same geometric mean)
            calls.append(_geometric_mean(here, after))
    return tuple(calls)


@dataclass(frozen=True, slots=True)
class Timeline:
    """The model calls of one ComfyUI sampler run: where a conditioning may switch."""

    sampling: DiscreteSampling
    calls: tuple[float, ...]
    #: The calls A1111's schedules count for this run (twice the steps for a two-call sampler).
    counted: int

    def percent_after(self, call: int) -> float:
        """A percent whose sigma is strictly between call ``call``'s and the next call's (a conditioning
        ending there is used up to ``call``, one starting there from ``call + 1``); the roundest such
        number. Raises ValueError when the two calls are at the same (or too close a) noise level."""
        hi, lo = self.calls[call], self.calls[call + 1]
        if not lo < hi or math.log(hi) - math.log(lo) < 1e-4:
            raise ValueError(
                f"ComfyUI calls the model at the same noise level at calls {call} and {call + 1}, "
                "where A1111's prompt schedule switches"
            )
        log_hi = min(math.log(hi), self.sampling.log_sigmas[-1])
        log_lo = max(math.log(lo), self.sampling.log_sigmas[0])
        gap = log_hi - log_lo
        inner_lo, inner_hi = log_lo + _MARGIN * gap, log_hi - _MARGIN * gap
        ms = self.sampling
        mid = 1.0 - ms.timestep((inner_lo + inner_hi) / 2) / 999.0
        for decimals in range(2, 10):
            percent = round(mid, decimals)
            if 0.0 < percent < 1.0 and inner_lo <= math.log(ms.percent_to_sigma(percent)) <= inner_hi:
                return percent
        raise ValueError(f"no ComfyUI percent falls between the noise levels of calls {call} and {call + 1}")


def timeline(sampler: str, scheduler: str, steps: int, denoise: float = 1.0) -> Timeline:
    """The calls of a ``KSampler`` run of an SD 1.x / 2.x / SDXL checkpoint. Raises ValueError when ComfyUI
    would run another number of steps than ``steps`` or its calls are not modelled."""
    ms = discrete_sampling()
    sigmas = ksampler_sigmas(ms, sampler, scheduler, steps, denoise)
    if len(sigmas) - 1 != steps:
        raise ValueError(f"ComfyUI's {scheduler} schedule runs {len(sigmas) - 1} steps for {steps}")
    return Timeline(ms, call_sigmas(sigmas, sampler), steps * 2 if sampler in _SECOND_CALL else steps)
