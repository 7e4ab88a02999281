"""The prompt schedule a plan carries: which text each denoiser call conditions on, per ``AND`` part.

AUTOMATIC1111 re-conditions during sampling: prompt editing ``[from:to:when]`` and alternation ``[a|b]``
change the text at given steps, and composable diffusion ``a AND b :1.2`` makes one noise prediction per
part and combines them with their weights. The planner computes the schedule from the prompt
(:mod:`.planning.prompt_schedule`); the engine encodes each distinct text once and switches at the calls
named here (:mod:`.engine.schedule`). A plan whose prompts use none of this carries no schedule.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

__all__ = ["PromptSchedule", "ScheduledText"]


@dataclass(frozen=True, slots=True)
class ScheduledText:
    """One prompt's texts over the denoiser calls.

    Segment ``i`` conditions on ``texts[index[i]]`` (on ``texts[i]`` when ``index`` is empty) for every
    call counted from 0 up to and including ``until[i]``: A1111 compares its 0-based call counter with
    ``end_at_step`` this way (``reconstruct_cond_batch``). ``weight`` is the part's ``AND`` weight (1 for
    the negative prompt). ``texts`` holds each distinct text once, so an alternation over 500 steps stores
    its two texts, not 500.
    """

    texts: tuple[str, ...]
    until: tuple[int, ...]
    index: tuple[int, ...] = ()
    weight: float = 1.0

    def segment(self, call: int) -> int:
        """The segment used at denoiser call ``call`` (0-based); past the last end, the last segment."""
        return min(bisect.bisect_left(self.until, call), len(self.until) - 1)

    def text_number(self, call: int) -> int:
        """Index into :attr:`texts` of the text used at ``call``."""
        segment = self.segment(call)
        return self.index[segment] if self.index else segment

    def text_at(self, call: int) -> str:
        """The text conditioned on at denoiser call ``call`` (0-based)."""
        return self.texts[self.text_number(call)]


@dataclass(frozen=True, slots=True)
class PromptSchedule:
    """The schedule of a whole generation.

    ``calls`` is the number of denoiser calls the schedule counts: the steps, doubled for A1111's
    second-order samplers (Heun, DPM2, DPM2 a, DPM++ SDE), as ``SamplerData.total_steps`` does.
    ``parts`` are the ``AND`` parts of the prompt; ``negative`` is the negative prompt (never split on
    ``AND``, as in A1111).
    """

    calls: int
    parts: tuple[ScheduledText, ...]
    negative: ScheduledText

    @property
    def composed(self) -> bool:
        """True when the noise predictions must be combined (several parts, or one part weighted)."""
        return len(self.parts) > 1 or any(part.weight != 1.0 for part in self.parts)
