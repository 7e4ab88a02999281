"""A1111 "parameters" text (infotext): write it from a plan, read it back from any A1111-like tool.

The layout is AUTOMATIC1111 1.9+::

    <prompt, possibly several lines>
    Negative prompt: <negative prompt, possibly several lines>
    Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 123, Size: 512x768, ...

Parsing follows A1111's ``parse_generation_parameters``: the last line holds the parameters only when it
has at least three ``key: value`` pairs; values containing ``,``, ``:`` or a newline are JSON-quoted.
Parsing never raises: text it cannot make sense of becomes the prompt. It is linear in the length of the
text (A1111's regex is quadratic on a long line without pairs); callers cap what they read from a file
(``output.metadata`` reads at most 1 MiB per text chunk).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import RequestError, UnknownSamplerError
from ..plan import GenerationPlan
from ..samplers import parse_sampler, split_sampler
from .infotext_passes import pass_pairs

__all__ = [
    "Infotext",
    "find_parameters",
    "format_cfg",
    "format_infotext",
    "parse_infotext",
    "quote",
    "unquote",
]

logger = logging.getLogger(__name__)

# A1111's parameter pattern (modules/infotext_utils.py) is r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)'.
# find_parameters gives what its findall gives, in linear time, with these pieces:
_RE_SPACE = re.compile(r"\s*")
_RE_KEY_RUN = re.compile(r"[\w \-/]+")
_RE_WORD = re.compile(r"\w")
_RE_QUOTED_BODY = re.compile(r'(?:\\.|[^\\"])*')
_RE_SIZE = re.compile(r"^(\d+)x(\d+)$")
_RE_KEY = re.compile(r"^\w[\w \-/]+$")
_NEGATIVE = "Negative prompt:"
_STANDARD_KEYS = frozenset(
    {
        "Steps",
        "Sampler",
        "Schedule type",
        "CFG scale",
        "Seed",
        "Size",
        "Model hash",
        "Model",
        "Clip skip",
        "Lora hashes",
        "TI hashes",
        "Version",
    }
)


@dataclass(frozen=True, slots=True)
class Infotext:
    """A parsed infotext: prompts, every raw parameter in order, and typed views of the common ones.

    ``parameters`` holds the unquoted ``(key, value)`` pairs exactly as found (``Size`` stays ``"512x768"``).
    Typed fields are ``None`` when the key is absent or its value does not parse.
    """

    prompt: str
    negative_prompt: str
    parameters: tuple[tuple[str, str], ...] = ()
    steps: int | None = None
    sampler: str | None = None
    schedule: str | None = None
    cfg_scale: float | None = None
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    model_hash: str | None = None
    model: str | None = None
    clip_skip: int | None = None
    version: str | None = None
    lora_hashes: tuple[tuple[str, str], ...] = ()
    ti_hashes: tuple[tuple[str, str], ...] = ()

    def get(self, key: str, default: str | None = None) -> str | None:
        """Raw value of parameter ``key`` (the last one when repeated, as A1111 does), else ``default``."""
        for name, value in reversed(self.parameters):
            if name == key:
                return value
        return default

    @property
    def keys(self) -> tuple[str, ...]:
        """Parameter names in order of appearance."""
        return tuple(name for name, _ in self.parameters)


def quote(value: str) -> str:
    """Quote a value the way A1111's ``quote()`` does (JSON string) when it needs it.

    A1111 quotes values containing ``,``, ``:`` or a newline. We also quote values that start with a
    double quote or with whitespace, which A1111's parser would otherwise alter; both forms read back
    the same in A1111.
    """
    text = str(value)
    if any(c in text for c in ",:\n") or text.startswith('"') or text[:1].isspace():
        return json.dumps(text, ensure_ascii=False)
    return text


def unquote(value: str) -> str:
    """Undo :func:`quote`; a value that is not a valid JSON string is returned unchanged."""
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        return value
    try:
        result = json.loads(value)
    except json.JSONDecodeError:
        return value
    return result if isinstance(result, str) else value


def format_cfg(value: float) -> str:
    """CFG scale as A1111 prints it: ``7`` for 7.0, ``7.5`` for 7.5."""
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def format_infotext(
    plan: GenerationPlan,
    *,
    seed: int,
    model_hash: str | None,
    version: str,
    extra: Sequence[tuple[str, str]] = (),
    index: int = 0,
) -> str:
    """The A1111 1.9+ infotext of one image of ``plan`` (``seed`` is that image's seed, ``index`` its place
    in the run, which picks its variation seed).

    ``extra`` pairs (e.g. ``("Lora hashes", "...")``) go before ``Version``; their keys must be plain
    A1111-style names and must not repeat a standard key.
    """
    pairs: list[tuple[str, str]] = [
        ("Steps", str(plan.steps)),
        ("Sampler", plan.sampler),
        ("Schedule type", plan.schedule),
        ("CFG scale", format_cfg(plan.cfg_scale)),
        ("Seed", str(seed)),
        ("Size", f"{plan.width}x{plan.height}"),
    ]
    if model_hash:
        pairs.append(("Model hash", model_hash))
    if plan.model.name:
        pairs.append(("Model", plan.model.name))
    if plan.clip_skip > 1:
        pairs.append(("Clip skip", str(plan.clip_skip)))
    pairs.extend(_input_pairs(plan))
    pairs.extend(pass_pairs(plan, index))
    hashed = [f"{lora.name}: {lora.hash}" for lora in plan.loras if lora.hash]
    if hashed:
        pairs.append(("Lora hashes", ", ".join(hashed)))
    ti_hashed = [f"{e.name}: {e.hash}" for e in plan.embeddings if e.hash]
    if ti_hashed:
        pairs.append(("TI hashes", ", ".join(ti_hashed)))
    for key, value in extra:
        if not _RE_KEY.match(key) or key != key.strip():
            raise RequestError(
                f"Infotext key {key!r} is not valid: use letters, digits, spaces, '-' or '/' "
                "(no ':' or ',' and no surrounding spaces)."
            )
        if key in _STANDARD_KEYS:
            raise RequestError(
                f"Infotext key {key!r} is written by format_infotext itself; remove it from extra."
            )
        pairs.append((key, value))
    pairs.append(("Version", version))
    params = ", ".join(f"{key}: {quote(value)}" for key, value in pairs)
    negative = f"\n{_NEGATIVE} {plan.negative_prompt}" if plan.negative_prompt else ""
    return f"{_prompt_with_lora_tags(plan)}{negative}\n{params}".strip()


def _input_pairs(plan: GenerationPlan) -> list[tuple[str, str]]:
    """The keys A1111 (and its ControlNet extension) write for img2img, inpaint and control units."""
    pairs: list[tuple[str, str]] = []
    init = plan.init
    if init is not None:
        pairs.append(("Denoising strength", format_cfg(init.strength)))
        if init.mask is not None:
            pairs.append(("Mask blur", str(init.mask_blur)))
            if init.inpaint_full_res:
                pairs.append(("Inpaint area", "Only masked"))
                pairs.append(("Masked area padding", str(init.inpaint_padding)))
            if init.inpainting_fill != "original":  # A1111 writes it for the other three
                pairs.append(("Masked content", init.inpainting_fill.replace("_", " ")))
    for i, unit in enumerate(plan.controls):
        model = unit.name or unit.model.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
        value = (
            f"Module: {unit.control_type}, Model: {model}, Weight: {format_cfg(unit.scale)}, "
            f"Guidance Start: {format_cfg(unit.guidance_start)}, Guidance End: {format_cfg(unit.guidance_end)}"
        )
        pairs.append((f"ControlNet {i}", value))
    for i, ip in enumerate(plan.ip_adapters):
        pairs.append((f"IP-Adapter {i}", f"Model: {ip.weight_name}, Weight: {format_cfg(ip.scale)}"))
    return pairs


def _prompt_with_lora_tags(plan: GenerationPlan) -> str:
    """The prompt as A1111 would show it: each LoRA as ``<lora:name:w>`` (``<lora:name:te:unet>``)."""
    tags = []
    for lora in plan.loras:
        if f"<lora:{lora.name}:" in plan.prompt:
            continue
        weights = (
            format_cfg(lora.unet_weight)
            if lora.te_weight == lora.unet_weight
            else f"{format_cfg(lora.te_weight)}:{format_cfg(lora.unet_weight)}"
        )
        tags.append(f"<lora:{lora.name}:{weights}>")
    return " ".join([plan.prompt, *tags]) if tags else plan.prompt


def find_parameters(line: str) -> list[tuple[str, str]]:
    """The ``(key, raw value)`` pairs of a parameters line, exactly as A1111's regex ``findall``, in O(n).

    The regex retries at every position of a long run of key characters and rescans to the end for every
    quoted value that does not close. Here each match starts from the next ``:`` (the key is the run of
    key characters before it, from its first word character), and a quoted scan that starts inside an
    earlier one reuses its end (it starts on the earlier scan's token boundary, so it ends the same way).
    """
    pairs: list[tuple[str, str]] = []
    n = len(line)
    backwards = line[::-1]
    pos = 0
    quote_scan = (-1, -1)  # (start, end) of the last quoted body scanned; end: its closing quote or n
    while (colon := line.find(":", pos)) >= 0:
        run = _RE_KEY_RUN.match(backwards, n - colon, n - pos)
        word = _RE_WORD.search(line, colon - (run.end() - run.start()) if run else colon, colon)
        if word is None or colon - word.start() < 2:
            pos = colon + 1
            continue
        key = line[word.start() : colon]
        value_start = _RE_SPACE.match(line, colon + 1).end()  # type: ignore[union-attr]
        if value_start < n and line[value_start] == '"':
            if not quote_scan[0] < value_start < quote_scan[1]:
                body = _RE_QUOTED_BODY.match(line, value_start + 1)
                quote_scan = (value_start, body.end())  # type: ignore[union-attr]
            close = quote_scan[1]
            closed = close > value_start + 1 and close < n and line[close] == '"'
            if closed and (close + 1 == n or line[close + 1] == ","):
                pairs.append((key, line[value_start : close + 1]))
                pos = close + 2
                continue
        comma = line.find(",", value_start)
        value_end = n if comma < 0 else comma
        pairs.append((key, line[value_start:value_end]))
        pos = value_end + 1
    return pairs


def parse_infotext(text: str) -> Infotext:
    """Parse A1111-style infotext (A1111, Forge, SD.Next, Fooocus …). Never raises."""
    if not isinstance(text, str):
        logger.debug("parse_infotext got %s, not str; treating it as empty", type(text).__name__)
        return Infotext(prompt="", negative_prompt="")
    *lines, last = text.strip().split("\n")
    found = find_parameters(last)
    if len(found) < 3:
        lines.append(last)
        found = []

    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    in_negative = False
    for raw in lines:
        line = raw.strip()
        if line.startswith(_NEGATIVE):
            in_negative = True
            line = line[len(_NEGATIVE) :].strip()
        (negative_lines if in_negative else prompt_lines).append(line)

    parameters = tuple((key, unquote(value)) for key, value in found)
    return _typed(Infotext("\n".join(prompt_lines), "\n".join(negative_lines), parameters))


def _typed(info: Infotext) -> Infotext:
    width = height = None
    size = info.get("Size")
    match = _RE_SIZE.match(size) if size else None
    if match:
        width, height = int(match.group(1)), int(match.group(2))
    sampler, schedule = _sampler_and_schedule(info.get("Sampler"), info.get("Schedule type"))
    return Infotext(
        prompt=info.prompt,
        negative_prompt=info.negative_prompt,
        parameters=info.parameters,
        steps=_to_int(info.get("Steps")),
        sampler=sampler,
        schedule=schedule,
        cfg_scale=_to_float(info.get("CFG scale")),
        seed=_to_int(info.get("Seed")),
        width=width,
        height=height,
        model_hash=info.get("Model hash"),
        model=info.get("Model"),
        clip_skip=_to_int(info.get("Clip skip")),
        version=info.get("Version"),
        lora_hashes=_hash_list(info.get("Lora hashes")),
        ti_hashes=_hash_list(info.get("TI hashes")),
    )


def _sampler_and_schedule(raw_sampler: str | None, raw_schedule: str | None) -> tuple[str | None, str | None]:
    """Canonical sampler and schedule from either A1111 form; foreign names are kept as written."""
    if raw_sampler is None:
        return None, raw_schedule
    try:
        name, embedded = split_sampler(raw_sampler)
    except UnknownSamplerError:
        return raw_sampler, raw_schedule
    if embedded is None and not raw_schedule:
        return name, None
    try:
        choice = parse_sampler(raw_sampler, raw_schedule)
    except UnknownSamplerError:
        # A schedule we do not know (Forge "Simple") or one diffusers lacks for this sampler: keep it raw.
        return name, embedded or raw_schedule
    return choice.sampler, choice.schedule


def _to_int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _to_float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


def _hash_list(value: str | None) -> tuple[tuple[str, str], ...]:
    """``"a: 0123, b: 4567"`` → ``(("a", "0123"), ("b", "4567"))``; items without ``:`` are skipped."""
    if not value:
        return ()
    pairs: list[tuple[str, str]] = []
    for item in value.split(","):
        name, sep, digest = item.rpartition(":")
        if sep and name.strip() and digest.strip():
            pairs.append((name.strip(), digest.strip()))
    return tuple(pairs)
