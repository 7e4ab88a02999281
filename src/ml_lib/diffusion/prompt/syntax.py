"""AUTOMATIC1111 prompt syntax → :class:`PromptDocument`, and back to text.

The document is lossless: ``parse_prompt(t).render() == t`` for every text, so a round trip never
changes a prompt. What A1111 does with a prompt, in its order:

1. extra-network tags ``<lora:name:w>`` are removed (:attr:`PromptDocument.networks`);
2. the rest is split on ``AND`` into composable parts, each with an optional ``:weight``
   (:attr:`PromptDocument.subprompts`);
3. each part is a tree of emphasis, prompt editing and alternation (:mod:`.grammar`), which gives the
   text at each sampling step (:meth:`SubPrompt.schedule`);
4. that text becomes weighted chunks (:func:`~.attention.parse_prompt_attention`).

Malformed input never raises; it degrades as A1111 degrades. Degenerate numbers (brackets nested over
32 deep, weights not finite or absurd, see :mod:`.limits`) raise :class:`PromptError` when parsed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .attention import BREAK, WeightedChunk, parse_number, parse_prompt_attention
from .grammar import parse_nodes
from .limits import check_network_weights, check_part_weight
from .networks import NetworkRef, extract_networks, insert_networks, strip_networks
from .nodes import Alternation, Emphasis, Node, Scheduled, Text, iter_nodes, render_nodes, text_at

__all__ = [
    "EmbeddingRef",
    "PromptDocument",
    "ScheduleEntry",
    "SubPrompt",
    "find_embeddings",
    "parse_prompt",
    "plain_text_of",
]

_AND = re.compile(r"\bAND\b")
_PART_WEIGHT = re.compile(r"\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+))\s*")
_HAS_BREAK = re.compile(r"\bBREAK\b")
_EXPLICIT_EMBEDDING = re.compile(r"\bembedding:([^\s,()\[\]<>|:]+)", re.I)
_EMBEDDING_SUFFIX = re.compile(r"\.(?:pt|bin|safetensors|ckpt)$", re.I)
_SPACES = re.compile(r"\s+")
_COMMAS = re.compile(r"\s*,(?:\s*,)*\s*")


@dataclass(frozen=True, slots=True)
class ScheduleEntry:
    """The prompt text used up to and including step ``end_step``."""

    end_step: int
    text: str

    @property
    def chunks(self) -> tuple[WeightedChunk, ...]:
        """The weighted chunks of :attr:`text`."""
        return parse_prompt_attention(self.text)


@dataclass(frozen=True, slots=True)
class SubPrompt:
    """One ``AND`` part: its tree, and ``tail``, the spaces and ``:weight`` written after it."""

    nodes: tuple[Node, ...]
    tail: str = ""

    @property
    def weight(self) -> float:
        """Composable-diffusion weight (``a cat :0.7 AND …``); 1.0 when none is written."""
        match = _PART_WEIGHT.fullmatch(self.tail)
        value = parse_number(match.group(1)) if match else None
        return 1.0 if value is None else value

    @property
    def text(self) -> str:
        """The part as written, without its weight."""
        return render_nodes(self.nodes)

    def render(self) -> str:
        return self.text + self.tail

    @property
    def plain_chunks(self) -> tuple[WeightedChunk, ...]:
        """Weighted chunks with every edit and alternation branch kept (for analysis, not conditioning)."""
        return parse_prompt_attention(_flat(self.nodes))

    def text_at(self, step: int, steps: int, *, hires_steps: int | None = None) -> str:
        """The text A1111 conditions on at ``step`` (1-based) of ``steps``."""
        return text_at(self.nodes, step, steps, hires_steps=hires_steps)

    def chunks_at(
        self, step: int, steps: int, *, hires_steps: int | None = None
    ) -> tuple[WeightedChunk, ...]:
        """Weighted chunks at ``step`` of ``steps``."""
        return parse_prompt_attention(self.text_at(step, steps, hires_steps=hires_steps))

    def schedule(self, steps: int, *, hires_steps: int | None = None) -> tuple[ScheduleEntry, ...]:
        """The texts and the step each one lasts to, as A1111's ``get_learned_conditioning_prompt_schedules``
        (``hires_steps`` for the second pass of hires fix, whose numbers count on from ``steps``)."""
        total = steps if hires_steps is None else hires_steps
        ends = {total}
        for node in iter_nodes(self.nodes):
            if isinstance(node, Scheduled):
                end = node.end_step(steps, hires_steps=hires_steps)
                if end >= 1:
                    ends.add(end)
            elif isinstance(node, Alternation):
                ends.update(range(1, total + 1))
        return tuple(
            ScheduleEntry(end, self.text_at(end, steps, hires_steps=hires_steps)) for end in sorted(ends)
        )


@dataclass(frozen=True, slots=True)
class EmbeddingRef:
    """A textual-inversion embedding named in the prompt, bare or as ``embedding:name``."""

    name: str
    explicit: bool = False


@dataclass(frozen=True, slots=True)
class PromptDocument:
    """A parsed prompt: ``AND`` parts, extra-network tags, and the embeddings it names."""

    subprompts: tuple[SubPrompt, ...]
    networks: tuple[NetworkRef, ...] = ()
    embeddings: tuple[EmbeddingRef, ...] = ()

    @property
    def text(self) -> str:
        """The prompt without its extra-network tags (what the text encoder sees)."""
        return "AND".join(part.render() for part in self.subprompts)

    def render(self) -> str:
        """The prompt text; exactly the parsed text for a parsed document."""
        return insert_networks(self.text, self.networks)

    @property
    def plain_text(self) -> str:
        """Words without syntax, for analysis: no brackets, weights, tags or markers; every edit and
        alternation branch kept; parts and BREAKs become commas."""
        return plain_text_of(part.plain_chunks for part in self.subprompts)

    @property
    def loras(self) -> tuple[NetworkRef, ...]:
        """The LoRA/LyCORIS tags."""
        return tuple(ref for ref in self.networks if ref.supported)

    @property
    def problems(self) -> tuple[str, ...]:
        """Tags that cannot be applied as written, in words (parsing itself never fails)."""
        return tuple(problem for ref in self.networks for problem in ref.problems)

    @property
    def is_composable(self) -> bool:
        """True when ``AND`` splits the prompt into several parts."""
        return len(self.subprompts) > 1

    @property
    def uses_editing(self) -> bool:
        """True when a ``[from:to:when]`` edit appears."""
        return any(isinstance(n, Scheduled) for p in self.subprompts for n in iter_nodes(p.nodes))

    @property
    def uses_alternation(self) -> bool:
        """True when an ``[a|b]`` alternation appears."""
        return any(isinstance(n, Alternation) for p in self.subprompts for n in iter_nodes(p.nodes))

    @property
    def uses_break(self) -> bool:
        """True when ``BREAK`` appears."""
        return bool(_HAS_BREAK.search(self.text))

    @property
    def uses_emphasis(self) -> bool:
        """True when a weighted or bracketed span appears."""
        return any(isinstance(n, Emphasis) for p in self.subprompts for n in iter_nodes(p.nodes))


def parse_prompt(text: str, *, embeddings: Iterable[str] = ()) -> PromptDocument:
    """Parse ``text``; ``embeddings`` are the embedding names known on disk (matched as bare words)."""
    body = strip_networks(text)
    parts = []
    for piece in _AND.split(body):
        head = _head_length(piece)
        parts.append(SubPrompt(parse_nodes(piece[:head]), piece[head:]))
    document = PromptDocument(tuple(parts), extract_networks(text))
    _check_numbers(document)
    names = tuple(embeddings)
    if not names and "embedding:" not in body.lower():
        return document
    found = _find_embeddings(document.plain_text, names)
    if not found:
        return document
    return PromptDocument(document.subprompts, document.networks, found)


def find_embeddings(document: PromptDocument, names: Iterable[str]) -> tuple[EmbeddingRef, ...]:
    """The embeddings a parsed prompt names: ``embedding:x`` anywhere, and each of ``names`` as a word."""
    names = tuple(names)
    if not names and "embedding:" not in document.text.lower():
        return ()
    return _find_embeddings(document.plain_text, names)


def _check_numbers(document: PromptDocument) -> None:
    """PromptError for degenerate nesting or weights (attention, AND parts, network tags)."""
    for part in document.subprompts:
        part.plain_chunks  # noqa: B018 -- computing them checks nesting and attention weights
        check_part_weight(part.weight, part.text)
    for ref in document.networks:
        check_network_weights(ref.source, ref.weight_texts)


def _head_length(piece: str) -> int:
    """Length of ``piece`` without its trailing ``:weight`` and spaces (A1111's lazy ``re_weight``, in
    linear time: that regex is quadratic on long runs of spaces)."""
    end = len(piece.rstrip())
    colon = piece.rfind(":", 0, end)
    if colon >= 0 and _PART_WEIGHT.fullmatch(piece, colon, end):
        return len(piece[:colon].rstrip())
    return end


def _flat(nodes: tuple[Node, ...]) -> str:
    out: list[str] = []
    for node in nodes:
        if isinstance(node, Text):
            out.append(node.source)
        elif isinstance(node, Emphasis):
            weight = "" if node.weight is None else ":" + _flat(node.weight)
            out.append(f"{node.bracket}{_flat(node.children)}{weight}{')' if node.bracket == '(' else ']'}")
        elif isinstance(node, Scheduled):
            out.append(f" {_flat(node.before or ())} {_flat(node.after)} ")
        else:
            out.append(" " + " ".join(_flat(option) for option in node.options) + " ")
    return "".join(out)


def plain_text_of(parts: Iterable[tuple[WeightedChunk, ...]]) -> str:
    """Plain text from the :attr:`SubPrompt.plain_chunks` of each part (see :attr:`PromptDocument.plain_text`)."""
    joined = ", ".join(
        "".join(", " if chunk.is_break or chunk.text == BREAK else chunk.text for chunk in chunks)
        for chunks in parts
    )
    joined = _SPACES.sub(" ", joined.replace("|", " ").replace("\\", " "))
    return _COMMAS.sub(", ", joined).strip(" ,")


@functools.lru_cache(maxsize=64)
def _name_pattern(names: tuple[str, ...]) -> re.Pattern[str] | None:
    usable = sorted({n for n in names if n.strip()}, key=len, reverse=True)
    if not usable:
        return None
    alternatives = "|".join(re.escape(n) for n in usable)
    return re.compile(rf"(?<![\w.-])(?:{alternatives})(?![\w-])", re.I)


def _find_embeddings(plain: str, names: tuple[str, ...]) -> tuple[EmbeddingRef, ...]:
    found: dict[str, EmbeddingRef] = {}
    for match in _EXPLICIT_EMBEDDING.finditer(plain):
        name = _EMBEDDING_SUFFIX.sub("", match.group(1))
        found.setdefault(name.lower(), EmbeddingRef(name, explicit=True))
    pattern = _name_pattern(names)
    if pattern is not None:
        canonical = {n.lower(): n for n in names}
        for match in pattern.finditer(plain):
            key = match.group(0).lower()
            found.setdefault(key, EmbeddingRef(canonical.get(key, match.group(0))))
    return tuple(found.values())
