"""Feed each UNet call its scheduled conditioning, and combine ``AND`` parts as A1111 does.

While a pipeline runs, forward hooks on its UNet (and ControlNet) replace the text embeddings the
pipeline passes with those of the current call (:class:`~.schedule.ScheduledConditioning`), counting
calls from 0 like A1111's CFG denoiser. With ``AND`` parts (or one weighted part) the UNet batch grows
from ``[uncond, cond]`` to ``[uncond, cond_1 … cond_K]`` (every other batched input — latents, SDXL time
ids, IP-Adapter image embeddings, ControlNet residuals — is repeated to match), and the output is folded
back so that the pipeline's own guidance gives A1111's ``combine_denoised``::

    uncond + cfg * sum_i w_i * (cond_i - uncond)

(the pipeline's cond slot receives ``uncond + sum_i w_i * (cond_i - uncond)``; without CFG in the pipeline
the whole formula is applied here). The hooks are torch's, removed when the run ends; nothing is kept on
the diffusers modules. ControlNets see the negative prompt and the first part of the current call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from .schedule import CallConditioning, ScheduledConditioning

__all__ = ["scheduled_conditioning_hooks"]


def _map_batch(value: Any, rows: int, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """``value`` with ``fn`` applied to every tensor whose first dimension is the batch (``rows``)."""
    if isinstance(value, torch.Tensor):
        return fn(value) if value.dim() >= 1 and value.shape[0] == rows else value
    if isinstance(value, list | tuple):
        return type(value)(_map_batch(v, rows, fn) for v in value)
    if isinstance(value, dict):
        return {k: _map_batch(v, rows, fn) for k, v in value.items()}
    return value


def _with_hidden(
    args: tuple[Any, ...], kwargs: dict[str, Any], hidden: torch.Tensor, pooled: torch.Tensor | None
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The call's arguments with ``encoder_hidden_states`` (third, by name or position) and SDXL's pooled
    text embeds replaced."""
    if len(args) > 2:
        args = (*args[:2], hidden, *args[3:])
    else:
        kwargs = {**kwargs, "encoder_hidden_states": hidden}
    return args, _with_pooled(kwargs, pooled)


def _with_pooled(kwargs: dict[str, Any], pooled: torch.Tensor | None) -> dict[str, Any]:
    """``kwargs`` with SDXL's ``added_cond_kwargs["text_embeds"]`` set to ``pooled`` (when both exist)."""
    added = kwargs.get("added_cond_kwargs")
    if pooled is None or not isinstance(added, dict) or "text_embeds" not in added:
        return kwargs
    return {**kwargs, "added_cond_kwargs": {**added, "text_embeds": pooled}}


class _Conditioner:
    """The hooks' state for one run: the call counter and how the current call's batch was laid out."""

    def __init__(self, conditioning: ScheduledConditioning, cfg_scale: float) -> None:
        self.conditioning = conditioning
        self.batch = conditioning.batch
        self.cfg_scale = cfg_scale
        self.composed = conditioning.schedule.composed
        self.call = 0
        self.guided = False  # the pipeline passed [uncond, cond] (its own CFG)

    def _guided(self, rows: int) -> bool:
        if rows == 2 * self.batch:
            return True
        if rows == self.batch:
            return False
        raise RuntimeError(f"UNet batch of {rows} for {self.batch} images: not a layout the schedule knows")

    def _cond_pair(self, c: CallConditioning, guided: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Embeddings (and pooled) of the first part, after the negative when the pipeline guides."""
        pooled = None if c.parts_pooled is None else c.parts_pooled[0]
        if not guided:
            return c.parts[0], pooled
        if pooled is not None and c.negative_pooled is not None:
            pooled = torch.cat([c.negative_pooled, pooled])
        return torch.cat([c.negative, c.parts[0]]), pooled

    def unet_pre(self, _module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
        sample = args[0] if args else kwargs["sample"]
        rows = sample.shape[0]
        self.guided = self._guided(rows)
        c = self.conditioning.at(self.call)
        if not self.composed:
            return _with_hidden(args, kwargs, *self._cond_pair(c, self.guided))
        b, k = self.batch, len(c.parts)

        def grow(t: torch.Tensor) -> torch.Tensor:
            return torch.cat([t[:b], *[t[b:]] * k]) if self.guided else torch.cat([t] * (k + 1))

        args, kwargs = _map_batch(args, rows, grow), _map_batch(kwargs, rows, grow)
        hidden = torch.cat([c.negative, *c.parts])
        pooled = None
        if c.parts_pooled is not None and c.negative_pooled is not None:
            pooled = torch.cat([c.negative_pooled, *c.parts_pooled])
        return _with_hidden(args, kwargs, hidden, pooled)

    def unet_post(self, _module: Any, _args: Any, _kwargs: Any, output: Any) -> Any:
        self.call += 1
        if not self.composed:
            return None
        sample = output[0] if isinstance(output, tuple) else output.sample
        b = self.batch
        uncond = sample[:b]
        delta = sum(
            (
                w * (sample[b * (i + 1) : b * (i + 2)] - uncond)
                for i, w in enumerate(self.conditioning.weights)
            ),
            torch.zeros_like(uncond),
        )
        folded = torch.cat([uncond, uncond + delta]) if self.guided else uncond + self.cfg_scale * delta
        if isinstance(output, tuple):
            return (folded, *output[1:])
        return type(output)(sample=folded)

    def control_pre(
        self, _module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, Any] | None:
        hidden = args[2] if len(args) > 2 else kwargs.get("encoder_hidden_states")
        if not isinstance(hidden, torch.Tensor):
            return None
        c = self.conditioning.at(self.call)
        return _with_hidden(args, kwargs, *self._cond_pair(c, hidden.shape[0] == 2 * self.batch))


@contextmanager
def scheduled_conditioning_hooks(
    view: Any, conditioning: ScheduledConditioning, *, cfg_scale: float
) -> Iterator[None]:
    """While the block runs, ``view``'s UNet (and ControlNet) take their text conditioning from
    ``conditioning``, call by call; ``cfg_scale`` applies to ``AND`` parts when the pipeline does not
    guide (CFG 1 or below)."""
    state = _Conditioner(conditioning, cfg_scale)
    unet = view.unet
    handles = [
        unet.register_forward_pre_hook(state.unet_pre, with_kwargs=True, prepend=True),
        unet.register_forward_hook(state.unet_post, with_kwargs=True, prepend=True),
    ]
    controlnet = getattr(view, "controlnet", None)
    if isinstance(controlnet, torch.nn.Module):
        handles.append(
            controlnet.register_forward_pre_hook(state.control_pre, with_kwargs=True, prepend=True)
        )
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
