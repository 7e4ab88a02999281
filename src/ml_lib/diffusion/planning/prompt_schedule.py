"""The plan's prompt schedule: A1111's schedules (:mod:`..prompt.schedule`) counted in denoiser calls.

A1111 computes its schedules over ``SamplerData.total_steps(steps)`` (twice the steps for second-order
samplers) and its CFG denoiser counts calls from 0; the engine counts UNet calls the same way, so the
schedule is stored in those units (:class:`~..prompt_schedule.PromptSchedule`). Pure.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..catalog.families import Family
from ..plan import Decision, HiresPlan, Source
from ..prompt.schedule import needs_schedule, negative_schedule, part_schedules
from ..prompt.syntax import ScheduleEntry, parse_prompt
from ..prompt_schedule import PromptSchedule, ScheduledText
from ..samplers import SAMPLERS, split_sampler

__all__ = ["denoiser_calls", "plan_hires_schedule", "plan_prompt_schedule", "plan_sdxl_empty_negative"]


def denoiser_calls(steps: int, sampler: str) -> int:
    """The calls A1111's schedules count for ``steps`` of ``sampler`` (``total_steps``)."""
    return steps * 2 if SAMPLERS[split_sampler(sampler)[0]].second_order else steps


def _scheduled(entries: Sequence[ScheduleEntry], weight: float = 1.0) -> ScheduledText:
    """Entries as a :class:`ScheduledText`: each distinct text once, ``index`` only when one repeats."""
    texts: list[str] = []
    number: dict[str, int] = {}
    index: list[int] = []
    for entry in entries:
        if entry.text not in number:
            number[entry.text] = len(texts)
            texts.append(entry.text)
        index.append(number[entry.text])
    repeats = len(texts) < len(index)
    return ScheduledText(
        tuple(texts), tuple(e.end_step for e in entries), tuple(index) if repeats else (), weight
    )


def plan_prompt_schedule(
    prompt: str,
    negative: str,
    steps: int,
    sampler: str,
    *,
    hires_steps: int | None = None,
    hires_sampler: str | None = None,
) -> PromptSchedule | None:
    """The schedule of ``prompt`` and ``negative`` over ``steps`` of ``sampler``; None when A1111 would
    condition on the texts as written (no ``AND``, part weight, edit or alternation), so such plans
    stay as they were.

    ``hires_steps`` gives the schedule of hires fix's second pass instead, as A1111's
    ``calculate_hr_conds``: edits count on from the first pass (``steps`` of ``sampler``), over the
    second pass's calls (``hires_steps`` of ``hires_sampler``, default ``sampler``).
    """
    document = parse_prompt(prompt)
    if not needs_schedule(document, negative):
        return None
    base = denoiser_calls(steps, sampler)
    hires = None if hires_steps is None else denoiser_calls(hires_steps, hires_sampler or sampler)
    parts = part_schedules(document, base, hires_steps=hires)
    return PromptSchedule(
        calls=base if hires is None else hires,
        parts=tuple(_scheduled(part.entries, part.weight) for part in parts),
        negative=_scheduled(negative_schedule(negative, base, hires_steps=hires)),
    )


def plan_hires_schedule(
    hires: HiresPlan, prompt: str, negative: str, steps: int, sampler: str
) -> PromptSchedule | None:
    """The schedule of ``hires``'s second pass after a first pass of ``steps`` of ``sampler`` with
    ``prompt`` and ``negative`` (A1111's ``calculate_hr_conds``: the hires prompts, else the first pass's,
    over the hires steps, else the first pass's, of the hires sampler, else the first pass's)."""
    return plan_prompt_schedule(
        hires.prompt or prompt,
        hires.negative_prompt or negative,
        steps,
        sampler,
        hires_steps=hires.steps or steps,
        hires_sampler=hires.sampler or None,
    )


def plan_sdxl_empty_negative(family: Family, setting: str) -> tuple[str, Decision | None]:
    """The plan's ``sdxl_empty_negative`` for ``family`` under the ``setting``, and a decision when the
    setting departs from A1111's zeros (the field means nothing outside SDXL, so it keeps its default)."""
    if family not in (Family.SDXL, Family.SDXL_REFINER) or setting == "zeros":
        return "zeros", None
    why = f"settings: ML_DIFFUSION_SDXL_EMPTY_NEGATIVE={setting} (ComfyUI encodes an empty negative prompt)"
    return setting, Decision("sdxl_empty_negative", setting, Source.USER, why)
