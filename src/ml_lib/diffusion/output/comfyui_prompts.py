"""A1111's prompts as ComfyUI conditioning: BREAK, prompt editing, alternation and composable ``AND``.

Every distinct text is encoded once (``CLIPTextEncode``; read by :func:`comfy_pieces`), then:

- **BREAK** → one ``CLIPTextEncode`` per piece, joined by ``ConditioningConcat`` (tokens concatenated,
  the first piece's pooled output kept). A1111 (and our engine) close the 75-token chunk at BREAK and pad
  it; ComfyUI pads each encoded piece to 77 tokens the same way (the end token for CLIP-L, 0 for the
  OpenCLIP encoders of SD 2.x and SDXL: ``sd1_clip.py``, ``sd2_clip.py``, ``sdxl_clip.py``), so this is
  exact whenever each piece fits one chunk. A longer piece is split by ComfyUI at word boundaries, by
  A1111 at the last comma within 20 tokens: the difference any long prompt already has. An empty piece
  after the last BREAK adds no chunk in A1111 and is left out.
- **Prompt editing / alternation** → the texts of the plan's schedule (:class:`~..prompt_schedule.PromptSchedule`),
  one ``ConditioningSetTimestepRange`` per run of calls with one text, merged by ``ConditioningCombine``;
  each boundary percent sits between the noise levels of the two calls where A1111 switches
  (:mod:`.comfyui_sigmas`), so ComfyUI switches at the same call with this sampler, scheduler and steps.
  Alternation makes one run per call: at most :data:`MAX_RANGES` runs per prompt are written.
- **An empty negative prompt** of an SDXL plan that conditions on zeros for it (``sdxl_empty_negative``
  "zeros", diffusers' ``force_zeros_for_empty_prompt``, A1111) → ``ConditioningZeroOut`` of the encoded
  "" (zero tokens and zero pooled output, ``nodes.py``); with "encode", ``CLIPTextEncode("")``.
- **AND** (composable diffusion). A1111 combines the noise predictions ``d_i`` of the parts (weights
  ``w_i``) and of the negative ``u`` as ``D = u + c * sum_i w_i (d_i - u)``. ComfyUI's ``calc_cond_batch``
  averages the conds active at a call by their strengths (``ConditioningSetAreaStrength``, ``s_i >= 0``):
  ``P = sum_i s_i d_i / (sum_i s_i + 1e-37)``, then ``D' = u + c' (P - u) = u + (c' / S) sum_i s_i (d_i - u)``
  with ``S = sum_i s_i``. With ``s_i = k w_i`` (any ``k > 0``) and ``c' = c * W``, ``W = sum_i w_i``, this
  is ``D`` exactly (the 1e-37 aside; at ``c' = 1`` ComfyUI skips ``u``, and both are ``sum_i w_i d_i / W``).
  So the graph's KSampler CFG is ``c * W`` (a Note says so when ``W != 1``). Not expressible, and refused:
  a negative weight (the strength input is 0-10, and ``S`` must stay positive), ``W <= 0``, ``c * W``
  above KSampler's 100, and ControlNet units (ComfyUI's ControlNet reads each part's text, our engine the
  first part's). Parts of different token lengths stay separate in ComfyUI, where A1111 pads the shorter
  by repeating its last token vector (``stack_conds``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..prompt.attention import parse_prompt_attention
from ..prompt.networks import strip_networks
from ..prompt.schedule import needs_schedule
from ..prompt.syntax import parse_prompt
from ..prompt_schedule import PromptSchedule, ScheduledText
from .comfyui_sigmas import Timeline

__all__ = ["MAX_RANGES", "Conditioned", "PromptEncoder", "comfy_pieces"]

Link = list[Any]
#: The most step ranges written for one prompt (alternation makes one per sampler call).
MAX_RANGES = 64
_MAX_STRENGTH = 10.0  # ConditioningSetAreaStrength's strength input goes up to 10
_MAX_CFG = 100.0  # KSampler's cfg input goes up to 100
_SPECIAL = re.compile(r"([()\\])")


def comfy_pieces(text: str, embeddings: tuple[str, ...] = ()) -> tuple[str, ...]:
    """``text`` (prompt editing already resolved) as the texts ComfyUI's CLIPTextEncode reads, one per
    BREAK piece: LoRA tags removed, every weight written ``(text:w)`` as A1111 computes it (``[x]`` is 1/1.1
    in A1111 and literal in ComfyUI), parentheses escaped, embeddings named ``embedding:name``."""
    pieces: list[list[str]] = [[]]
    for chunk in parse_prompt_attention(strip_networks(text)):
        if chunk.is_break:
            pieces.append([])
            continue
        rendered = _SPECIAL.sub(r"\\\1", chunk.text)
        for name in embeddings:
            rendered = re.sub(rf"(?<![\w:]){re.escape(name)}(?!\w)", f"embedding:{name}", rendered)
        weight = round(chunk.weight, 4)
        pieces[-1].append(rendered if weight == 1.0 or not rendered.strip() else f"({rendered}:{weight:g})")
    texts = ["".join(piece) for piece in pieces]
    if len(texts) > 1 and not texts[-1].strip():  # A1111 adds no chunk for nothing after the last BREAK
        texts.pop()
    return tuple(texts)


@dataclass(frozen=True, slots=True)
class Conditioned:
    """The positive and negative conditioning of one sampler pass, the CFG its KSampler needs, and notes
    for the workflow."""

    positive: Link
    negative: Link
    cfg: float
    notes: tuple[str, ...] = ()


def _runs(text: ScheduledText, calls: int) -> list[tuple[int, int, int]]:
    """(text number, first call, last call) of each run of calls conditioned on one text."""
    runs: list[tuple[int, int, int]] = []
    for call in range(calls):
        number = text.text_number(call)
        if runs and runs[-1][0] == number:
            runs[-1] = (number, runs[-1][1], call)
        else:
            runs.append((number, call, call))
    return runs


def _strengths(schedule: PromptSchedule, cfg: float, controls: bool) -> tuple[tuple[float, ...], float]:
    """ConditioningSetAreaStrength strengths of the AND parts and the KSampler CFG (module docstring)."""
    weights = tuple(part.weight for part in schedule.parts)
    if any(w < 0 for w in weights):
        raise ValueError("a negative AND weight cannot be written as ComfyUI's (non-negative) strengths")
    total = sum(weights)
    if total <= 0:
        raise ValueError("the AND weights sum to 0, which ComfyUI's strength average cannot express")
    if cfg * total > _MAX_CFG:
        raise ValueError(f"CFG {cfg:g} x AND weights {total:g} is beyond KSampler's {_MAX_CFG:g}")
    if controls and len(weights) > 1:
        raise ValueError("AND with ControlNet: ComfyUI's ControlNet reads each part's text, ours the first's")
    scale = min(1.0, _MAX_STRENGTH / max(weights))
    return tuple(w * scale for w in weights), cfg * total


@dataclass(slots=True)
class PromptEncoder:
    """Conditioning nodes of one graph: ``add`` makes a node and returns its id; each distinct text is
    encoded once with ``clip``."""

    add: Callable[..., str]
    clip: Link
    embeddings: tuple[str, ...] = ()
    #: An empty negative prompt is zeros (SDXL as diffusers' ``force_zeros_for_empty_prompt``), written
    #: as ``ConditioningZeroOut`` of the encoded ""; else CLIPTextEncode("") as any text.
    zero_empty_negative: bool = False
    _texts: dict[str, Link] = field(default_factory=dict)
    _pieces: dict[str, Link] = field(default_factory=dict)
    _strong: dict[tuple[str, float], Link] = field(default_factory=dict)
    _ranges: int = 0  # ConditioningSetTimestepRange nodes made
    _zero: Link | None = None

    def text(self, text: str, title: str) -> Link:
        """The conditioning of ``text`` (BREAK pieces concatenated), made once per text and piece."""
        if text not in self._texts:
            pieces = comfy_pieces(text, self.embeddings)
            link = self._piece(pieces[0], title)
            for i, piece in enumerate(pieces[1:], start=2):
                concat = self.add(
                    "ConditioningConcat",
                    "BREAK",
                    conditioning_to=link,
                    conditioning_from=self._piece(piece, f"{title} (BREAK {i})"),
                )
                link = [concat, 0]
            self._texts[text] = link
        return self._texts[text]

    def _piece(self, piece: str, title: str) -> Link:
        if piece not in self._pieces:
            self._pieces[piece] = [self.add("CLIPTextEncode", title, text=piece, clip=self.clip), 0]
        return self._pieces[piece]

    def conditioning(
        self,
        schedule: PromptSchedule | None,
        texts: tuple[str, str],
        cfg: float,
        *,
        timeline: Callable[[], Timeline],
        controls: bool = False,
        titles: tuple[str, str] = ("Positive prompt", "Negative prompt"),
    ) -> Conditioned:
        """Positive and negative conditioning of a pass: ``schedule``'s, or the ``texts`` (prompt, negative)
        as written. ``timeline`` gives the pass's ComfyUI calls when a text changes during sampling.
        Raises ValueError with the reason when ComfyUI's core nodes cannot do as A1111 does."""
        prompt, negative = texts
        if schedule is None:
            if needs_schedule(parse_prompt(prompt), negative):
                raise ValueError(
                    "the prompt uses scheduling, alternation or AND but the plan holds no prompt schedule"
                )
            return Conditioned(self.text(prompt, titles[0]), self._negative(negative, titles[1]), cfg)
        strengths: tuple[float | None, ...] = (None,) * len(schedule.parts)
        a1111_cfg = cfg
        if schedule.composed:
            strengths, cfg = _strengths(schedule, cfg, controls)
        lines: list[Timeline] = []

        def line() -> Timeline:
            if not lines:
                made = timeline()
                if made.counted != schedule.calls:
                    raise ValueError(
                        f"the prompt schedule counts {schedule.calls} sampler calls, ComfyUI's sampler "
                        f"{made.counted}"
                    )
                lines.append(made)
            return lines[0]

        ranges_before = self._ranges
        positive: Link | None = None
        for i, (part, strength) in enumerate(zip(schedule.parts, strengths, strict=True)):
            title = titles[0] if len(schedule.parts) == 1 else f"{titles[0]}, AND part {i + 1}"
            link = self._scheduled(part, line, title, strength)
            positive = link if positive is None else self._combine(positive, link, "AND")
        assert positive is not None  # a schedule has at least one part
        if self.zero_empty_negative and all(t == "" for t in schedule.negative.texts):
            negative_link = self._negative("", titles[1])
        else:
            negative_link = self._scheduled(schedule.negative, line, titles[1], None)
        notes = []
        total = sum(part.weight for part in schedule.parts)
        if schedule.composed and total != 1.0:
            notes.append(
                f"AND: this KSampler's cfg {cfg:g} is A1111's CFG {a1111_cfg:g} x the AND weights' sum {total:g}. "
                "ComfyUI averages the parts by their strengths where A1111 adds them weighted; so scaled, the two "
                "agree."
            )
        if self._ranges > ranges_before:
            notes.append(
                "Prompt schedule: the step ranges switch prompts at the same sampler calls as A1111 for "
                "this sampler, scheduler and step count; change those and the switches move."
            )
        return Conditioned(positive, negative_link, cfg, tuple(notes))

    def _negative(self, text: str, title: str) -> Link:
        """A negative prompt's conditioning: zeros for an empty one when so set, else its text's."""
        if not (self.zero_empty_negative and text == ""):
            return self.text(text, title)
        if self._zero is None:
            empty = self.text("", title)
            self._zero = [self.add("ConditioningZeroOut", f"{title} (empty: zeros)", conditioning=empty), 0]
        return self._zero

    def _combine(self, first: Link, second: Link, title: str) -> Link:
        return [self.add("ConditioningCombine", title, conditioning_1=first, conditioning_2=second), 0]

    def _strength(self, text: str, title: str, strength: float | None) -> Link:
        link = self.text(text, title)
        if strength is None or strength == 1.0:  # get_area_and_mult's default strength is 1
            return link
        key = (text, strength)
        if key not in self._strong:
            node = self.add(
                "ConditioningSetAreaStrength", f"{title} weight", conditioning=link, strength=strength
            )
            self._strong[key] = [node, 0]
        return self._strong[key]

    def _scheduled(
        self, text: ScheduledText, line: Callable[[], Timeline], title: str, strength: float | None
    ) -> Link:
        """One prompt's conditioning over the pass: its texts with step ranges, or its one text."""
        if len(text.texts) == 1:
            return self._strength(text.texts[0], title, strength)
        timeline = line()
        calls = len(timeline.calls)
        runs = _runs(text, calls)
        if len(runs) > MAX_RANGES:
            raise ValueError(
                f"the prompt schedule switches text {len(runs) - 1} times (alternation switches every step); "
                f"ComfyUI graphs are written for at most {MAX_RANGES} step ranges per prompt"
            )
        if len(runs) == 1:
            return self._strength(text.texts[runs[0][0]], title, strength)
        out: Link | None = None
        for number, first, last in runs:
            link = self._strength(text.texts[number], title, strength)
            start = 0.0 if first == 0 else timeline.percent_after(first - 1)
            end = 1.0 if last == calls - 1 else timeline.percent_after(last)
            self._ranges += 1
            ranged: Link = [
                self.add(
                    "ConditioningSetTimestepRange",
                    f"{title} (calls {first}-{last})",
                    conditioning=link,
                    start=start,
                    end=end,
                ),
                0,
            ]
            out = ranged if out is None else self._combine(out, ranged, title)
        assert out is not None
        return out
