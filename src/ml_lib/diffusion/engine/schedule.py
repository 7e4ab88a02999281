"""A plan's prompt schedule as embeddings: each distinct text encoded once, each call's batch built once.

For a denoiser call the conditioning is A1111's ``reconstruct_multicond_batch`` / ``reconstruct_cond_batch``:
the text of each ``AND`` part and of the negative prompt at that call; parts of different lengths are
padded by repeating their last token vector (``stack_conds``), then the shorter of parts and negative
is padded with encoded empty prompts (``pad_cond_uncond``, as :mod:`.conditioning` pads a plain prompt).
SDXL's pooled output comes from each text's first chunk; an empty negative prompt is zeros or encoded as
the plan says (``sdxl_empty_negative``). :mod:`.compose` feeds these to the UNet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..catalog.families import Family
from ..plan import GenerationPlan
from ..prompt_schedule import PromptSchedule
from .conditioning import encode_text

__all__ = ["CallConditioning", "Encoded", "ScheduledConditioning", "encode_schedule", "is_sdxl"]

Encoded = tuple[torch.Tensor, torch.Tensor | None]


def is_sdxl(plan: GenerationPlan) -> bool:
    """True for the SDXL families (two text encoders, pooled output)."""
    return Family(plan.model.family) in (Family.SDXL, Family.SDXL_REFINER)


@dataclass(frozen=True, slots=True)
class CallConditioning:
    """The embeddings of one denoiser call, repeated over the batch and of one sequence length: the
    negative prompt's and each ``AND`` part's, with SDXL's pooled outputs (None for SD)."""

    negative: torch.Tensor
    parts: tuple[torch.Tensor, ...]
    negative_pooled: torch.Tensor | None = None
    parts_pooled: tuple[torch.Tensor, ...] | None = None


class ScheduledConditioning:
    """The conditioning of every call of a :class:`~..prompt_schedule.PromptSchedule`.

    Built by :func:`encode_schedule`; :meth:`at` assembles a call's batch from already encoded texts
    (once per distinct combination of segments) and never runs a text encoder, except once for the empty
    prompt if padding needs it.
    """

    def __init__(
        self,
        schedule: PromptSchedule,
        encoded: dict[str, Encoded],
        encode: Callable[[str], Encoded],
        *,
        batch: int,
        zero_negative: bool,
    ) -> None:
        self.schedule = schedule
        self.batch = batch
        self._encoded = encoded
        self._encode = encode
        self._zero_negative = zero_negative
        self._calls: dict[tuple[int, ...], CallConditioning] = {}

    @property
    def weights(self) -> tuple[float, ...]:
        """The ``AND`` weight of each part."""
        return tuple(part.weight for part in self.schedule.parts)

    def at(self, call: int) -> CallConditioning:
        """The conditioning of denoiser call ``call`` (0-based, A1111's counter)."""
        key = tuple(p.text_number(call) for p in (self.schedule.negative, *self.schedule.parts))
        if key not in self._calls:
            self._calls[key] = self._assemble(call)
        return self._calls[key]

    def pipeline_kwargs(self, *, cfg: bool) -> dict[str, torch.Tensor]:
        """The embedding arguments of the diffusers pipeline: call 0's first part (and negative)."""
        first = self.at(0)
        out = {"prompt_embeds": first.parts[0]}
        if first.parts_pooled is not None:
            out["pooled_prompt_embeds"] = first.parts_pooled[0]
        if cfg:
            out["negative_prompt_embeds"] = first.negative
            if first.negative_pooled is not None:
                out["negative_pooled_prompt_embeds"] = first.negative_pooled
        return out

    def _empty(self) -> torch.Tensor:
        if "" not in self._encoded:
            self._encoded[""] = self._encode("")
        return self._encoded[""][0]

    def _pad(self, z: torch.Tensor, length: int) -> torch.Tensor:
        """``z`` followed by encoded empty prompts up to ``length`` tokens (A1111's ``pad_cond``)."""
        if z.shape[1] >= length:
            return z
        empty = self._empty()
        return torch.cat([z, *[empty] * ((length - z.shape[1]) // empty.shape[1])], dim=1)

    def _assemble(self, call: int) -> CallConditioning:
        parts = [self._encoded[p.text_at(call)] for p in self.schedule.parts]
        tokens = max(z.shape[1] for z, _ in parts)
        zs = [_repeat_last(z, tokens) for z, _ in parts]
        negative_text = self.schedule.negative.text_at(call)
        if self._zero_negative:
            negative, negative_pooled = torch.zeros_like(zs[0]), _zeros(parts[0][1])
        else:
            negative, negative_pooled = self._encoded[negative_text]
        length = max(tokens, negative.shape[1])
        zs, negative = [self._pad(z, length) for z in zs], self._pad(negative, length)
        pooled = [p for _, p in parts]
        return CallConditioning(
            negative=_batch(negative, self.batch),
            parts=tuple(_batch(z, self.batch) for z in zs),
            negative_pooled=None if negative_pooled is None else _batch(negative_pooled, self.batch),
            parts_pooled=None
            if pooled[0] is None
            else tuple(_batch(p, self.batch) for p in pooled if p is not None),
        )


def _repeat_last(z: torch.Tensor, tokens: int) -> torch.Tensor:
    """A1111's ``stack_conds``: a shorter part gets its last token vector repeated."""
    if z.shape[1] == tokens:
        return z
    return torch.cat([z, z[:, -1:].repeat(1, tokens - z.shape[1], 1)], dim=1)


def _zeros(pooled: torch.Tensor | None) -> torch.Tensor | None:
    return None if pooled is None else torch.zeros_like(pooled)


def _batch(t: torch.Tensor, batch: int) -> torch.Tensor:
    return t.repeat(batch, *([1] * (t.dim() - 1)))


def encode_schedule(
    pipe: Any,
    plan: GenerationPlan,
    device: torch.device,
    *,
    schedule: PromptSchedule | None = None,
    cache: dict[str, Encoded] | None = None,
) -> ScheduledConditioning:
    """Encode each distinct text of ``schedule`` (default ``plan.prompt_schedule``) once and assemble the
    batch of every call the schedule counts (later calls reuse them). ``cache`` holds texts already
    encoded for ``plan`` in this run (the hires pass reuses the first pass's) and receives the new ones."""
    if schedule is None:
        schedule = plan.prompt_schedule
    if schedule is None:
        raise ValueError("the plan has no prompt schedule")
    known: dict[str, Encoded] = {} if cache is None else cache
    sdxl = is_sdxl(plan)
    negative = schedule.negative
    zero_negative = sdxl and plan.sdxl_empty_negative == "zeros" and all(t == "" for t in negative.texts)

    def encode(text: str) -> Encoded:
        return encode_text(pipe, text, sdxl=sdxl, clip_skip=plan.clip_skip, device=device)

    texts = [t for part in schedule.parts for t in part.texts]
    if not zero_negative:
        texts += negative.texts
    for text in dict.fromkeys(texts):
        if text not in known:
            known[text] = encode(text)
    encoded = known
    conditioning = ScheduledConditioning(
        schedule, encoded, encode, batch=plan.batch_size, zero_negative=zero_negative
    )
    for call in range(schedule.calls):
        conditioning.at(call)
    return conditioning
