"""File names from templates such as ``"[counter]-[seed]-[prompt_words]"``, safe on every OS.

Tokens: ``[date]`` ``[time]`` ``[datetime]`` ``[seed]`` ``[prompt_words]`` ``[model]`` ``[sampler]``
``[steps]`` ``[cfg]`` ``[width]`` ``[height]`` ``[counter]``. The rendered stem is NFC-normalised,
stripped of characters Windows, macOS or Linux reject and of invisible ones (controls, bidi overrides
such as U+202E that make ``x\u202egnp.exe`` show as ``xexe.png``, zero-width and line separators), kept
clear of Windows device names and capped in UTF-8 bytes.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..errors import OutputNotWritableError, RequestError
from ..plan import GenerationPlan
from .infotext import format_cfg

__all__ = [
    "DEFAULT_TEMPLATE",
    "MAX_STEM_BYTES",
    "TOKENS",
    "NameContext",
    "next_counter",
    "prompt_words",
    "render_stem",
    "safe_stem",
    "template_tokens",
]

logger = logging.getLogger(__name__)

DEFAULT_TEMPLATE = "[counter]-[seed]-[prompt_words]"
MAX_STEM_BYTES = 180
MAX_PROMPT_WORDS = 8
MAX_PROMPT_CHARS = 64
_FALLBACK = "image"

_RE_TOKEN = re.compile(r"\[([^\[\]]*)\]")
_RE_LEADING_NUMBER = re.compile(r"^(\d+)")
_RE_TAG = re.compile(r"<[^<>]*>")
_RE_WEIGHT = re.compile(r":\s*[-+]?\d+(?:\.\d+)?|:\s*[-+]?\.\d+")
_RE_NON_WORD = re.compile(r"[\W_]+")
_RE_SPACES = re.compile(r"\s+")
_FORBIDDEN = frozenset('<>:"/\\|?*')
_PROMPT_KEYWORDS = frozenset({"BREAK", "AND"})
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"{dev}{n}" for dev in ("COM", "LPT") for n in (*"123456789", "¹", "²", "³")}
)


@dataclass(frozen=True, slots=True)
class NameContext:
    """The values a name template can use for one image."""

    seed: int
    prompt: str
    model: str
    sampler: str
    steps: int
    cfg: float
    width: int
    height: int
    counter: int
    now: datetime

    @classmethod
    def from_plan(cls, plan: GenerationPlan, *, seed: int, now: datetime, counter: int = 0) -> NameContext:
        """Context for the image of ``plan`` with ``seed`` (the writer fills ``counter``)."""
        return cls(
            seed=seed,
            prompt=plan.prompt,
            model=plan.model.name,
            sampler=plan.sampler,
            steps=plan.steps,
            cfg=plan.cfg_scale,
            width=plan.width,
            height=plan.height,
            counter=counter,
            now=now,
        )


TOKENS: dict[str, Callable[[NameContext], str]] = {
    "date": lambda c: c.now.strftime("%Y-%m-%d"),
    "time": lambda c: c.now.strftime("%H-%M-%S"),
    "datetime": lambda c: c.now.strftime("%Y%m%d%H%M%S"),
    "seed": lambda c: str(c.seed),
    "prompt_words": lambda c: prompt_words(c.prompt),
    "model": lambda c: c.model,
    "sampler": lambda c: c.sampler,
    "steps": lambda c: str(c.steps),
    "cfg": lambda c: format_cfg(c.cfg),
    "width": lambda c: str(c.width),
    "height": lambda c: str(c.height),
    "counter": lambda c: f"{c.counter:05d}",
}


def template_tokens(template: str) -> tuple[str, ...]:
    """Token names used by ``template``, in order; RequestError naming the known ones for any unknown."""
    names = tuple(_RE_TOKEN.findall(template))
    unknown = [name for name in names if name not in TOKENS]
    if unknown:
        raise RequestError(
            f"Unknown file name token(s) {', '.join(f'[{n}]' for n in unknown)} in {template!r}. "
            f"Known tokens: {' '.join(f'[{n}]' for n in TOKENS)}."
        )
    return names


def render_stem(template: str, ctx: NameContext) -> str:
    """The safe file stem (no extension) for ``ctx`` under ``template``."""
    template_tokens(template)
    rendered = _RE_TOKEN.sub(lambda m: TOKENS[m.group(1)](ctx), template)
    return safe_stem(rendered)


def prompt_words(prompt: str, *, max_words: int = MAX_PROMPT_WORDS, max_chars: int = MAX_PROMPT_CHARS) -> str:
    """The first words of a prompt, without A1111 syntax (brackets, ``<lora:…>``, ``:1.2`` weights)."""
    text = _RE_WEIGHT.sub(" ", _RE_TAG.sub(" ", prompt))
    words = [w for w in _RE_NON_WORD.split(text) if w and w not in _PROMPT_KEYWORDS]
    chosen: list[str] = []
    for word in words[:max_words]:
        if len(" ".join([*chosen, word])) > max_chars:
            if not chosen:
                chosen.append(word[:max_chars])
            break
        chosen.append(word)
    return " ".join(chosen) or "empty"


#: Unicode categories never kept in a name: controls, format characters (bidi, zero-width), surrogates,
#: line and paragraph separators.
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def safe_stem(text: str, *, max_bytes: int = MAX_STEM_BYTES) -> str:
    """A file stem valid on Windows, macOS and Linux; ``"image"`` when nothing usable is left."""
    text = _RE_SPACES.sub(" ", unicodedata.normalize("NFC", text))
    text = "".join(c for c in text if c not in _FORBIDDEN and unicodedata.category(c) not in _INVISIBLE)
    text = _RE_SPACES.sub(" ", text).strip(" .")
    text = _truncate_utf8(text, max_bytes).rstrip(" .")
    base, dot, rest = text.partition(".")
    if base.rstrip(" ").upper() in _RESERVED:
        text = _truncate_utf8(f"{base.rstrip(' ')}_{dot}{rest}", max_bytes).rstrip(" .")
    return text or _FALLBACK


def _truncate_utf8(text: str, max_bytes: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    return data[:max_bytes].decode("utf-8", errors="ignore")


def next_counter(directory: Path) -> int:
    """1 + the largest number any file name in ``directory`` starts with (A1111's rule); 1 when none."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return 1
    except OSError as exc:
        raise OutputNotWritableError(
            f"Cannot list output folder {directory}: {exc.strerror or exc}. "
            "Choose a folder you can write to with --out."
        ) from exc
    largest = 0
    for name in names:
        match = _RE_LEADING_NUMBER.match(name)
        if match:
            largest = max(largest, int(match.group(1)))
    return largest + 1
