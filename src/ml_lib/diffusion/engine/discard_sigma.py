"""DPM2, DPM2 a and DPM++ 3M SDE with A1111's "discard next-to-last sigma": the noise levels of
``steps + 1`` steps, the penultimate one dropped.

A1111 marks these samplers ``discard_next_to_last_sigma`` (``sd_samplers_kdiffusion.py``; DPM++ 3M SDE
since 1.6: ``('DPM++ 3M SDE', 'sample_dpmpp_3m_sde', ['k_dpmpp_3m_sde'], {'scheduler': 'exponential',
'discard_next_to_last_sigma': True, "brownian_noise": True})``): ``get_sigmas``
asks its schedule for ``steps + 1`` sigmas and keeps ``sigmas[:-2] + sigmas[-1:]``, so the run still has
``steps`` steps but its levels are those of a longer schedule (ComfyUI's ``dpm_2`` / ``dpm_2_ancestral``
do the same). diffusers' ``KDPM2DiscreteScheduler`` and ``KDPM2AncestralDiscreteScheduler`` have no such
option and no custom sigmas, so these subclasses let diffusers compute its ``steps + 1`` schedule, drop
the penultimate level, and rebuild the interleaved arrays from what is left exactly as diffusers'
``set_timesteps`` builds them from its own levels (:func:`rebuild_kdpm2`, :func:`rebuild_kdpm2_ancestral`;
a test checks they reproduce diffusers' arrays from diffusers' own levels). diffusers'
``DPMSolverMultistepScheduler`` keeps one level per step (``sigmas``, ``timesteps``), so its subclass drops
the penultimate level and its timestep (ComfyUI's ``dpmpp_3m_sde`` does not drop it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import diffusers
import numpy as np
import torch

__all__ = [
    "DiscardPenultimateDPMSolverMultistep",
    "DiscardPenultimateKDPM2",
    "DiscardPenultimateKDPM2Ancestral",
    "discarding_class",
    "rebuild_kdpm2",
    "rebuild_kdpm2_ancestral",
    "step_levels",
]


def _pairs(t: torch.Tensor) -> torch.Tensor:
    """diffusers' layout of per-step values: the first, each later one twice, the last again."""
    return torch.cat([t[:1], t[1:].repeat_interleave(2), t[-1:]])


def _interpol_timesteps(scheduler: Any, sigmas_interpol: torch.Tensor) -> np.ndarray:
    log_sigmas = scheduler.log_sigmas.cpu()
    return np.array([scheduler._sigma_to_t(s, log_sigmas) for s in sigmas_interpol.cpu()])


def step_levels(scheduler: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-step noise levels (ending in 0) and timesteps a KDPM2 scheduler's ``set_timesteps`` set."""
    return scheduler.sigmas[0::2], scheduler.timesteps[0::2]


def rebuild_kdpm2(scheduler: Any, sigmas: torch.Tensor, timesteps: torch.Tensor) -> None:
    """``KDPM2DiscreteScheduler``'s state for per-step ``sigmas`` (ending in 0) and ``timesteps``."""
    device = sigmas.device
    interpol = sigmas.log().lerp(sigmas.roll(1).log(), 0.5).exp()
    scheduler.sigmas = _pairs(sigmas)
    scheduler.sigmas_interpol = _pairs(interpol)
    t_interpol = torch.from_numpy(_interpol_timesteps(scheduler, interpol)).to(device, dtype=timesteps.dtype)
    interleaved = torch.stack((t_interpol[1:-1, None], timesteps[1:, None]), dim=-1).flatten()
    scheduler.timesteps = torch.cat([timesteps[:1], interleaved])
    _reset(scheduler)


def rebuild_kdpm2_ancestral(scheduler: Any, sigmas: torch.Tensor, timesteps: torch.Tensor) -> None:
    """``KDPM2AncestralDiscreteScheduler``'s state for per-step ``sigmas`` (ending in 0) and ``timesteps``."""
    device = sigmas.device
    sigmas_next = sigmas.roll(-1)
    sigmas_next[-1] = 0.0
    up = (sigmas_next**2 * (sigmas**2 - sigmas_next**2) / sigmas**2) ** 0.5
    down = (sigmas_next**2 - up**2) ** 0.5
    down[-1] = 0.0
    interpol = sigmas.log().lerp(down.log(), 0.5).exp()
    interpol[-2:] = 0.0
    scheduler.sigmas = _pairs(sigmas)
    scheduler.sigmas_interpol = _pairs(interpol)
    scheduler.sigmas_up = _pairs(up)
    scheduler.sigmas_down = _pairs(down)
    t_interpol = torch.from_numpy(_interpol_timesteps(scheduler, interpol)).to(device, dtype=timesteps.dtype)
    interleaved = torch.stack((t_interpol[:-2, None], timesteps[1:, None]), dim=-1).flatten()
    scheduler.timesteps = torch.cat([timesteps[:1], interleaved])
    _reset(scheduler)


def _reset(scheduler: Any) -> None:
    scheduler.sample = None
    scheduler._step_index = None
    scheduler._begin_index = None
    scheduler.sigmas = scheduler.sigmas.to("cpu")  # where diffusers keeps them


def _discarding_set_timesteps(
    scheduler: Any,
    parent: type[Any],
    rebuild: Callable[[Any, torch.Tensor, torch.Tensor], None],
    steps: int,
    device: Any,
    num_train_timesteps: int | None,
) -> None:
    parent.set_timesteps(scheduler, steps + 1, device=device, num_train_timesteps=num_train_timesteps)
    sigmas, timesteps = step_levels(scheduler)
    sigmas = torch.cat([sigmas[:-2], sigmas[-1:]]).to(scheduler.log_sigmas.device)
    rebuild(scheduler, sigmas, timesteps[:-1])
    scheduler.num_inference_steps = steps


class DiscardPenultimateKDPM2(diffusers.KDPM2DiscreteScheduler):
    """``KDPM2DiscreteScheduler`` on A1111's DPM2 levels (``steps + 1``, the penultimate dropped)."""

    def set_timesteps(
        self,
        num_inference_steps: int,
        device: str | torch.device | None = None,
        num_train_timesteps: int | None = None,
    ) -> None:
        """Set ``num_inference_steps`` steps on the levels of ``num_inference_steps + 1``, less the penultimate."""
        _discarding_set_timesteps(
            self,
            diffusers.KDPM2DiscreteScheduler,
            rebuild_kdpm2,
            num_inference_steps,
            device,
            num_train_timesteps,
        )


class DiscardPenultimateKDPM2Ancestral(diffusers.KDPM2AncestralDiscreteScheduler):
    """``KDPM2AncestralDiscreteScheduler`` on A1111's DPM2 a levels (``steps + 1``, the penultimate dropped)."""

    def set_timesteps(
        self,
        num_inference_steps: int,
        device: str | torch.device | None = None,
        num_train_timesteps: int | None = None,
    ) -> None:
        """Set ``num_inference_steps`` steps on the levels of ``num_inference_steps + 1``, less the penultimate."""
        _discarding_set_timesteps(
            self,
            diffusers.KDPM2AncestralDiscreteScheduler,
            rebuild_kdpm2_ancestral,
            num_inference_steps,
            device,
            num_train_timesteps,
        )


class DiscardPenultimateDPMSolverMultistep(diffusers.DPMSolverMultistepScheduler):
    """``DPMSolverMultistepScheduler`` on A1111's DPM++ 3M SDE levels (``steps + 1``, the penultimate
    dropped): its ``sigmas`` hold one level per step and the final one, ``timesteps`` one per step."""

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: str | torch.device | None = None,
        mu: float | None = None,
        timesteps: list[int] | None = None,
    ) -> None:
        """Set ``num_inference_steps`` steps on the levels of ``num_inference_steps + 1``, less the penultimate."""
        if num_inference_steps is None or timesteps is not None:
            raise ValueError("A1111's discarded levels are set from a step count, not from custom timesteps.")
        parent: type[Any] = diffusers.DPMSolverMultistepScheduler
        parent.set_timesteps(self, num_inference_steps + 1, device=device, mu=mu)
        state: Any = self  # diffusers' attributes are untyped
        state.sigmas = torch.cat([state.sigmas[:-2], state.sigmas[-1:]])
        state.timesteps = state.timesteps[:-1]
        state.num_inference_steps = num_inference_steps


_DISCARDING: dict[str, type[Any]] = {
    "KDPM2DiscreteScheduler": DiscardPenultimateKDPM2,
    "KDPM2AncestralDiscreteScheduler": DiscardPenultimateKDPM2Ancestral,
    "DPMSolverMultistepScheduler": DiscardPenultimateDPMSolverMultistep,
}


def discarding_class(class_name: str) -> type[Any]:
    """The discarding subclass of diffusers' ``class_name``; a clear error for a scheduler without one."""
    try:
        return _DISCARDING[class_name]
    except KeyError:
        raise ValueError(f"no discard-penultimate-sigma variant of {class_name}") from None
